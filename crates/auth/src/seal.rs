//! Sealing small secrets at rest (vendors' bank details): AES-256-GCM with a random 96-bit
//! nonce per value, under the installation's data key. The key lives outside the database
//! (configuration, or a file beside the embedded cluster), so a copy of the database alone
//! does not reveal what is sealed.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// The 256-bit key sealed values are encrypted with.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the data key must be 32 bytes written in base64 (44 characters)")]
    BadKey,
    #[error("a sealed value could not be opened: wrong data key, or the value was altered")]
    CannotOpen,
}

const VERSION: u8 = 1;

impl DataKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self(key))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Encrypts `plain`, binding it to `context` (e.g. the record's organisation and id) so a
    /// sealed value copied onto another record does not open.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new((&self.0).into());
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(1 + 12 + plain.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        // Encrypting into a Vec cannot fail for inputs this small; an error would be a bug in
        // the cipher, and an empty seal then fails to open rather than leaking anything.
        if let Ok(sealed) = cipher.encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plain,
                aad: context,
            },
        ) {
            out.extend_from_slice(&sealed);
        }
        out
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != VERSION {
            return Err(SealError::CannotOpen);
        }
        let nonce: [u8; 12] = sealed[1..13]
            .try_into()
            .map_err(|_| SealError::CannotOpen)?;
        let cipher = Aes256Gcm::new((&self.0).into());
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed[13..],
                    aad: context,
                },
            )
            .map_err(|_| SealError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let key = DataKey::generate();
        let sealed = key.seal(b"12-34-56 12345678", b"org/vendor-1");
        assert!(!sealed.windows(8).any(|w| w == b"12345678"));
        assert_eq!(
            key.open(&sealed, b"org/vendor-1").as_deref(),
            Ok(&b"12-34-56 12345678"[..])
        );
        assert_eq!(
            key.open(&sealed, b"org/vendor-2"),
            Err(SealError::CannotOpen)
        );
        assert_eq!(
            DataKey::generate().open(&sealed, b"org/vendor-1"),
            Err(SealError::CannotOpen)
        );
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            key.open(&altered, b"org/vendor-1"),
            Err(SealError::CannotOpen)
        );
    }

    #[test]
    fn a_key_round_trips_through_base64_and_never_prints() {
        let key = DataKey::generate();
        let again = DataKey::from_base64(&key.to_base64()).map(|k| k.0);
        assert_eq!(again, Ok(key.0));
        assert_eq!(
            DataKey::from_base64("short").map(|k| k.0),
            Err(SealError::BadKey)
        );
        assert_eq!(format!("{key:?}"), "DataKey([redacted])");
    }
}
