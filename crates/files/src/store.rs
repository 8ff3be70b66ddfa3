//! The store: checks an upload, then keeps it under its content hash.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::MAX_UPLOAD_BYTES;
use crate::error::{FileError, UploadError};
use crate::media::{MediaType, sniff};
use crate::picture::{Picture, PictureError, read_picture};

/// Where uploaded files live: the local filesystem by default, any `object_store` (S3) later.
#[derive(Debug, Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    /// Decoding a large photo takes a core and up to a few hundred megabytes; this keeps a burst
    /// of uploads from running more decodes at once than there are cores.
    decoding: Arc<Semaphore>,
}

/// A file as stored: what to record in the database beside the thing it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub size: i64,
    pub media_type: MediaType,
    pub key: String,
    /// Only for types we [can thumbnail](MediaType::can_thumbnail).
    pub thumbnail_key: Option<String>,
    /// As displayed (after EXIF rotation); `None` for PDFs and HEIC/HEIF.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl FileStore {
    /// A store in `root` on the local disk, creating the directory if need be. Files written
    /// there outlive the process: a new `FileStore` on the same `root` reads them back.
    pub fn local(root: &Path) -> Result<Self, FileError> {
        std::fs::create_dir_all(root).map_err(|source| FileError::CreateRoot {
            path: root.to_owned(),
            source,
        })?;
        // Writes go to a temporary file renamed into place, so an interrupted upload never leaves
        // half a file under a hash key for `put_once` to mistake for the whole.
        let local = LocalFileSystem::new_with_prefix(root)?;
        Ok(Self::from_store(Arc::new(local)))
    }

    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            store,
            decoding: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Checks an upload and stores it (and its thumbnail, for pictures we can decode).
    ///
    /// `declared_name` is the name the browser sent; its extension must agree with the content,
    /// which must be one of `allowed`. Keys are scoped to `org` and derived from the content, so
    /// the same bytes uploaded twice in one organisation are stored once, while another
    /// organisation's identical upload gets its own copy and can never be found through ours.
    pub async fn put(
        &self,
        org: Uuid,
        declared_name: &str,
        bytes: Bytes,
        allowed: &[MediaType],
    ) -> Result<StoredFile, UploadError> {
        let name = display_name(declared_name);
        let media_type = check(&name, &bytes, allowed)?;
        // At most MAX_UPLOAD_BYTES, checked just above: far inside an i64.
        let size = bytes.len() as i64;
        let (sha256, picture) = self
            .hash_and_decode(&name, bytes.clone(), media_type)
            .await?;

        let key = format!("org/{org}/sha256/{}/{sha256}", &sha256[..2]);
        self.put_once(&key, bytes.into()).await?;
        let (thumbnail_key, dimensions) = match picture {
            Some(Picture {
                width,
                height,
                thumbnail_jpeg,
            }) => {
                let thumbnail_key = format!("org/{org}/thumb/{sha256}.jpg");
                self.put_once(&thumbnail_key, thumbnail_jpeg.into()).await?;
                (Some(thumbnail_key), Some((width, height)))
            }
            None => (None, None),
        };

        Ok(StoredFile {
            sha256,
            size,
            media_type,
            key,
            thumbnail_key,
            width: dimensions.map(|(width, _)| width),
            height: dimensions.map(|(_, height)| height),
        })
    }

    /// The content stored under `key` (a [`StoredFile::key`] or `thumbnail_key`).
    pub async fn get(&self, key: &str) -> Result<Bytes, FileError> {
        let location = parse_key(key)?;
        let found = self.store.get(&location).await?;
        Ok(found.bytes().await?)
    }

    /// Hashing 20 MB and decoding a photo both take long enough to stall other requests on an
    /// async worker, so they run on a blocking thread, a few at a time.
    async fn hash_and_decode(
        &self,
        name: &str,
        bytes: Bytes,
        media_type: MediaType,
    ) -> Result<(String, Option<Picture>), UploadError> {
        let permit = Arc::clone(&self.decoding)
            .acquire_owned()
            .await
            .map_err(|_closed| FileError::Cancelled)?;
        let work = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let picture = media_type
                .can_thumbnail()
                .then(|| read_picture(&bytes, media_type))
                .transpose();
            (sha256, picture)
        });
        let (sha256, picture) = match work.await {
            Ok(done) => done,
            // A decoder that panics on a file has met a file it cannot read.
            Err(join) if join.is_panic() => return Err(damaged(name, media_type)),
            Err(_cancelled) => return Err(FileError::Cancelled.into()),
        };
        let picture = picture.map_err(|error| match error {
            PictureError::Damaged => damaged(name, media_type),
            PictureError::TooManyPixels => UploadError::TooManyPixels {
                name: name.to_owned(),
            },
            PictureError::Encode(source) => FileError::Thumbnail(source).into(),
        })?;
        Ok((sha256, picture))
    }

    /// Content-addressed keys never change meaning, so an existing object is already right.
    /// Two identical uploads racing past the `head` both write the same bytes: harmless.
    async fn put_once(&self, key: &str, payload: PutPayload) -> Result<(), FileError> {
        let location = parse_key(key)?;
        match self.store.head(&location).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        self.store.put(&location, payload).await?;
        Ok(())
    }
}

/// The checks that need only the bytes in hand, cheapest first.
fn check(name: &str, bytes: &[u8], allowed: &[MediaType]) -> Result<MediaType, UploadError> {
    let not_accepted = || UploadError::NotAccepted {
        name: name.to_owned(),
        allowed: allowed.to_vec(),
    };
    if bytes.is_empty() {
        return Err(UploadError::Empty {
            name: name.to_owned(),
        });
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(UploadError::TooLarge {
            name: name.to_owned(),
            size: bytes.len(),
        });
    }
    // An unknown extension is refused even if the content is fine: the name is what the next
    // person to download it will trust.
    let declared = match extension(name) {
        Some(extension) => Some(MediaType::from_extension(extension).ok_or_else(not_accepted)?),
        None => None,
    };
    let found = match (sniff(bytes), declared) {
        (Some(found), _) => found,
        (None, Some(declared)) => {
            return Err(UploadError::Unrecognised {
                name: name.to_owned(),
                declared,
            });
        }
        (None, None) => return Err(not_accepted()),
    };
    if let Some(declared) = declared
        && !declared.admits(found)
    {
        return Err(UploadError::Mismatch {
            name: name.to_owned(),
            declared,
            found,
        });
    }
    if !allowed.contains(&found) {
        return Err(UploadError::NotAllowedHere {
            name: name.to_owned(),
            found,
            allowed: allowed.to_vec(),
        });
    }
    Ok(found)
}

/// The extension of a file name, if it has one: "photo.JPG" → "JPG"; "photo", "photo." and
/// ".heic" (a hidden file's whole name) have none.
fn extension(name: &str) -> Option<&str> {
    match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() && !extension.is_empty() => Some(extension),
        _ => None,
    }
}

/// The declared name fit to show back in a message: some browsers send a whole path
/// (`C:\Users\…\quote.pdf`), and a name may carry control characters or run on for pages.
fn display_name(declared: &str) -> String {
    const MAX_CHARS: usize = 100;
    let base = declared.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.chars().count() <= MAX_CHARS {
        return clean.to_owned();
    }
    // Keep the end, where the extension is, so the message still shows what was wrong.
    let tail: String = clean
        .chars()
        .skip(clean.chars().count() - (MAX_CHARS - 1))
        .collect();
    format!("…{tail}")
}

fn damaged(name: &str, found: MediaType) -> UploadError {
    UploadError::Damaged {
        name: name.to_owned(),
        found,
    }
}

fn parse_key(key: &str) -> Result<Key, FileError> {
    Key::parse(key).map_err(|_invalid| FileError::InvalidKey {
        key: key.to_owned(),
    })
}
