//! PropLink's domain types. Everything here is pure: no database, no network, no clock.
//! A value of one of these types is valid by construction ("parse, don't validate").

pub mod actor;
pub mod dates;
pub mod slug;

pub use actor::{ActorKind, Channel};
pub use slug::{OrgSlug, SlugError};
pub mod ids;
pub use ids::OrgId;
pub mod email;
pub use email::EmailAddress;
pub mod authorize;
pub mod bacs;
pub mod bulk_invite;
mod choice;
pub mod import;
pub mod permissions;
pub mod portfolio;
pub mod uk;
pub use uk::{AccountNumber, PhoneNumber, Postcode, SortCode, Uprn, VatNumber};
pub mod folders;
pub mod ledger;
pub mod operations;
pub mod receivables;
pub mod schedule;
pub mod sla;
