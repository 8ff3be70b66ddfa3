//! PropLink's money documents — demands, credit notes, receipts, statements of account and
//! remittance advices to suppliers — typeset in-process with typst into A4 PDFs, and the same documents as standalone HTML pages
//! for an external renderer (Gotenberg's Chromium route, in `proplink-integrations`).
//!
//! Nothing a user typed is ever written into typst markup: [`render`] serialises the document
//! (every value already worded: "£1,250.50", "10 May 2026") to JSON, which a fixed template
//! reads with `json("/data.json")` and places as text. A description such as `#panic("x")` or
//! `*bold*` prints as those characters. [`html`] escapes every value the same way.
//!
//! Speed: [`render`] is synchronous and CPU-bound (call it from `spawn_blocking` in async
//! code). `proplink bench money` measures it on one thread, after [`warm_up`], on statements
//! read from its 100,000-unit book: see its output (and the issue 6 note) for the figures. The first render in a process adds ~20 ms
//! (fonts and template). In a debug build (typst's crates at opt-level 1, see the root
//! Cargo.toml) a one-page document costs ~60 ms of CPU; the 300-row statement test (7 pages,
//! rendered and read back) takes ~3 s.

mod document;
mod html;
mod view;
mod world;

pub use document::{
    CreditNote, DocLine, Document, Invoice, Organisation, Party, Receipt, Remittance,
    RemittanceLine, Statement, StatementRow, Statutory,
};
pub use view::LANDLORD_CITATION;

use sha2::{Digest, Sha256};
use std::panic::{AssertUnwindSafe, catch_unwind};
use typst::diag::SourceDiagnostic;
use typst::ecow::EcoVec;
use typst::foundations::Smart;
use typst_layout::PagedDocument;
use typst_pdf::PdfOptions;
use view::View;
use world::DocWorld;

/// A rendered PDF and its SHA-256, to store beside it and to prove later what was issued.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub sha256_hex: String,
    pub pages: usize,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("bytes", &self.pdf.len())
            .field("sha256_hex", &self.sha256_hex)
            .field("pages", &self.pages)
            .finish()
    }
}

/// Why a document could not be rendered. None of these is the user's doing: the data is never
/// interpreted, so each one is a fault in this crate (or an unreadable logo).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF renderer could not start: {0}")]
    Setup(String),
    #[error("the document could not be serialised: {0}")]
    Data(String),
    #[error("the document could not be typeset: {0}")]
    Typeset(String),
    #[error("the PDF could not be written: {0}")]
    Export(String),
    #[error("the PDF renderer failed unexpectedly: {0}")]
    Crashed(String),
}

/// How many renders a memoised typst result may go unused before it is dropped. typst keeps
/// results across compilations (that is what makes the next document fast); without eviction a
/// long-running process would keep every document it ever rendered.
const CACHE_MAX_AGE: usize = 10;

/// Loads the embedded fonts and parses the template, so that the first real render (or a
/// benchmark) does not pay for it. Safe to call any number of times; call it at start-up to
/// fail early.
pub fn warm_up() -> Result<(), PdfError> {
    world::warm_up().map_err(PdfError::Setup)
}

/// Typesets the document as an A4 PDF.
pub fn render(doc: &Document) -> Result<Rendered, PdfError> {
    let view = View::of(doc);
    let data = serde_json::to_vec(&view).map_err(|e| PdfError::Data(e.to_string()))?;
    let logo = doc.org().logo_png.clone();
    let world = DocWorld::new(data, logo).map_err(PdfError::Setup)?;
    let ident = view.caption.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| typeset(&world, ident)));
    typst::comemo::evict(CACHE_MAX_AGE);
    let (pdf, pages) = outcome.map_err(|panic| PdfError::Crashed(panic_message(&panic)))??;
    let sha256_hex = hex::encode(Sha256::digest(&pdf));
    Ok(Rendered {
        pdf,
        sha256_hex,
        pages,
    })
}

fn typeset(world: &DocWorld, ident: String) -> Result<(Vec<u8>, usize), PdfError> {
    let document: PagedDocument = typst::compile(world)
        .output
        .map_err(|e| PdfError::Typeset(messages(&e)))?;
    // A stable identifier and no timestamp: the same document always gives the same bytes,
    // so its hash identifies it.
    let options = PdfOptions {
        ident: Smart::Custom(ident),
        ..PdfOptions::default()
    };
    let pdf = typst_pdf::pdf(&document, &options).map_err(|e| PdfError::Export(messages(&e)))?;
    Ok((pdf, document.pages().len()))
}

fn messages(diagnostics: &EcoVec<SourceDiagnostic>) -> String {
    diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The same document as one standalone HTML page (inline CSS, the logo as a data URI, A4
/// print styles), every value HTML-escaped.
pub fn html(doc: &Document) -> String {
    html::page(&View::of(doc), doc.org().logo_png.as_deref())
}
