//! Credential primitives for every front door (issue 3). Pure apart from the CPU: no database.
//!
//! - [`password`]: the password policy, and Argon2id hashing on blocking threads (never on the
//!   async runtime's), with a dummy hash so an unknown e-mail costs the same time as a known one.
//! - [`totp`]: authenticator apps (RFC 6238), refusing a time step already used.
//! - [`codes`]: 6-digit one-time codes and backup codes, stored as keyed hashes.
//! - [`links`]: 256-bit tokens for signed links and hand-offs, stored as hashes.
//! - [`seal`]: AES-256-GCM sealing of small secrets at rest (bank details) under the data key.

pub mod codes;
pub mod links;
pub mod password;
pub mod seal;
pub mod totp;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
