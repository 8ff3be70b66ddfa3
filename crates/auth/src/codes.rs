//! One-time codes (6 digits, by e-mail) and backup codes (10, one use each).
//!
//! A 6-digit code has only a million values, so a plain hash would fall to a brute-force
//! search if the table leaked. Codes are therefore stored as HMAC-SHA-256 under a server key,
//! bound to their purpose and subject: a leaked table alone reveals nothing, and a code for one
//! purpose or person is useless for another. Attempts are limited by the caller.

use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

pub const CODE_DIGITS: usize = 6;
pub const BACKUP_CODES: usize = 10;
/// No 0/o, 1/l/i: backup codes are read off paper.
const BACKUP_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A fresh 6-digit code, uniformly random, leading zeros kept.
pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Ten backup codes like `k7dm-3qwp`.
pub fn new_backup_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..BACKUP_CODES)
        .map(|_| {
            let mut s = String::with_capacity(9);
            for i in 0..8 {
                if i == 4 {
                    s.push('-');
                }
                s.push(char::from(
                    BACKUP_ALPHABET[rng.random_range(0..BACKUP_ALPHABET.len())],
                ));
            }
            s
        })
        .collect()
}

/// What a person typed, in the form codes are hashed in: no spaces or hyphens, lower case.
pub fn normalise(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The server key codes are hashed under (from configuration; at least 32 bytes).
#[derive(Clone)]
pub struct CodeKey(SecretSlice<u8>);

impl CodeKey {
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.len() < 32 {
            return Err("the one-time code key must be at least 32 bytes".into());
        }
        Ok(Self(SecretSlice::from(key)))
    }

    /// A random key, for tests and the embedded demo (which stores it in its data directory).
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rng().fill(&mut key[..]);
        Self(SecretSlice::from(key))
    }

    /// The stored form of `code` for `purpose` (e.g. "sign_in") and `subject` (e.g. a user id).
    pub fn digest(&self, purpose: &str, subject: &str, code: &str) -> String {
        #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("any key length");
        for part in [purpose, subject, &normalise(code)] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `code` matches a stored digest, in constant time.
    pub fn matches(&self, purpose: &str, subject: &str, code: &str, stored: &str) -> bool {
        crate::constant_time_eq(
            self.digest(purpose, subject, code).as_bytes(),
            stored.as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == CODE_DIGITS && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(codes.len() > 190, "codes repeat too often: {}", codes.len());
    }

    #[test]
    fn backup_codes_are_ten_distinct_and_readable() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 9);
            assert_eq!(&c[4..5], "-");
            assert!(!c.contains(['0', 'o', '1', 'l', 'i']), "{c}");
        }
        assert_eq!(normalise(" K7DM 3qwp "), "k7dm3qwp");
        assert_eq!(normalise("k7dm-3qwp"), "k7dm3qwp");
    }

    #[test]
    fn a_digest_is_bound_to_key_purpose_subject_and_code() {
        let key = CodeKey::generate();
        let d = key.digest("sign_in", "user-1", "123456");
        assert_eq!(d.len(), 64);
        assert!(key.matches("sign_in", "user-1", "123 456", &d));
        assert!(!key.matches("sign_in", "user-1", "123457", &d));
        assert!(!key.matches("password_reset", "user-1", "123456", &d));
        assert!(!key.matches("sign_in", "user-2", "123456", &d));
        assert!(!CodeKey::generate().matches("sign_in", "user-1", "123456", &d));
        assert!(CodeKey::new(vec![1; 16]).is_err());
    }
}
