//! PropLink's integrations: one module per external service, each a trait with a real client
//! written to the provider's published API and an embedded default that needs no account
//! (DESIGN.md §7).

pub mod geo;
pub mod mail;
pub mod payments;
pub mod pdf;
