//! PropLink's database layer.
//!
//! - [`cluster`]: the embedded PostgreSQL cluster used by `proplink demo` and the tests.
//! - [`setup`]: roles, databases and migrations.
//! - [`tenant`]: [`TenantTx`], the only handle to tenant data (DESIGN.md §2).
//! - [`organisation`], [`audit`], [`jobs`], [`email`], [`webhook`]: repositories by area.
//! - [`links`], [`portal`], [`rate_limit`]: signed links, portal one-time codes, abuse limits.
//! - [`portfolio`], [`people`], [`search`], [`import`]: estates to units, contacts, leases,
//!   vendors, search, CSV imports.
//! - [`lint`]: the schema rules every tenant table must follow, checked against the catalogue.

pub mod access;
pub mod approvals;
pub mod audit;
pub mod bank_accounts;
pub mod bill_intake;
pub mod bills;
pub mod chart;
pub mod cluster;
pub mod demand_run;
pub mod email;
pub mod error;
pub mod folders;
pub mod import;
pub mod jobs;
pub mod ledger;
pub mod links;
pub mod lint;
pub mod maintenance;
pub mod manual_journals;
pub mod money_history;
pub mod operations;
pub mod organisation;
pub mod payments;
pub mod people;
pub mod pools;
pub mod portal;
pub mod portfolio;
pub mod profile;
pub mod rate_limit;
pub mod receipt_batches;
pub mod receivables;
pub mod resident;
pub mod search;
pub mod service_categories;
pub mod session_cache;
pub mod setup;
pub mod staff;
pub mod tenant;
pub mod ticket_settings;
pub mod tickets;
pub mod webhook;

pub use error::DbError;
pub use pools::{AppPool, PlatformPool};
pub use tenant::{Actor, TenantContext, TenantTx};
