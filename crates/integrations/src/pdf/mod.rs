//! PDF rendering through an external service (DESIGN.md §7). The embedded default needs no
//! service: `proplink-pdf` typesets documents in-process with typst. [`gotenberg::GotenbergClient`]
//! is the alternative: it sends the same document as HTML (`proplink_pdf::html`) to a Gotenberg 8
//! server, whose Chromium prints it.
//!
//! Error policy: a [`GotenbergError`] is for the operator and the job log, never a leaseholder:
//! it says what went wrong with the service and carries Gotenberg's own (shortened) words.

pub mod gotenberg;

pub use gotenberg::{GotenbergClient, GotenbergError, PageSetup};

#[cfg(test)]
mod tests;
