//! The smallest typst `World` that typesets a document: one fixed template as the main source,
//! the document's data and logo as two virtual files, and the fonts embedded in typst-assets.
//! Nothing is read from disk and no package can be fetched.

use std::path::PathBuf;
use std::sync::OnceLock;
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

const TEMPLATE: &str = include_str!("document.typ");
pub const DATA_PATH: &str = "/data.json";
pub const LOGO_PATH: &str = "/logo.png";

/// What every render shares: parsed once, then cloned cheaply (each is reference-counted).
/// Keeping the template's `Source` the same object lets typst's memoisation reuse its
/// evaluation from one document to the next.
struct Shared {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    main: Source,
    data: FileId,
    logo: FileId,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

fn shared() -> Result<&'static Shared, String> {
    SHARED.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn file_id(path: &str) -> Result<FileId, String> {
    let vpath = VirtualPath::new(path).map_err(|e| format!("bad virtual path {path}: {e:?}"))?;
    Ok(RootedPath::new(VirtualRoot::Project, vpath).intern())
}

fn load() -> Result<Shared, String> {
    let fonts: Vec<Font> = typst_assets::fonts()
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .collect();
    if fonts.is_empty() {
        return Err("no fonts are embedded (typst-assets needs its `fonts` feature)".into());
    }
    Ok(Shared {
        library: LazyHash::new(Library::default()),
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        main: Source::new(file_id("/main.typ")?, TEMPLATE.to_owned()),
        data: file_id(DATA_PATH)?,
        logo: file_id(LOGO_PATH)?,
        fonts,
    })
}

/// Parses the fonts and the template, once per process.
pub fn warm_up() -> Result<(), String> {
    shared().map(|_| ())
}

pub struct DocWorld {
    shared: &'static Shared,
    data: Bytes,
    logo: Option<Bytes>,
}

impl DocWorld {
    pub fn new(data: Vec<u8>, logo: Option<Vec<u8>>) -> Result<Self, String> {
        Ok(Self {
            shared: shared()?,
            data: Bytes::new(data),
            logo: logo.filter(|l| !l.is_empty()).map(Bytes::new),
        })
    }

    fn not_found(id: FileId) -> FileError {
        FileError::NotFound(PathBuf::from(id.vpath().get_with_slash()))
    }
}

impl World for DocWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.shared.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.shared.book
    }

    fn main(&self) -> FileId {
        self.shared.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.shared.main.id() {
            Ok(self.shared.main.clone())
        } else {
            Err(Self::not_found(id))
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.shared.data {
            Ok(self.data.clone())
        } else if id == self.shared.logo {
            self.logo.clone().ok_or_else(|| Self::not_found(id))
        } else if id == self.shared.main.id() {
            Ok(Bytes::from_string(self.shared.main.clone()))
        } else {
            Err(Self::not_found(id))
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.shared.fonts.get(index).cloned()
    }

    /// Documents carry their own dates; the template never asks for today's.
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}
