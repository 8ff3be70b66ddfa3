//! Passwords: at least 12 characters with letters and numbers (docs-spec §2.22), hashed with
//! Argon2id. Hashing runs on tokio's blocking pool: at 50–150 ms a hash it would otherwise stall
//! every request sharing the runtime thread.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

pub const MIN_LENGTH: usize = 12;
/// Long enough for any passphrase; bounds the work an attacker can ask of the hasher.
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Your password must be at least {MIN_LENGTH} characters long.")]
    TooShort,
    #[error("Your password must be at most {MAX_LENGTH} characters long.")]
    TooLong,
    #[error("Your password must contain both letters and numbers.")]
    NeedsLettersAndNumbers,
    #[error("Your password must not be your e-mail address.")]
    IsEmail,
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str, email: &str) -> Result<(), PolicyError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyError::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PolicyError::TooLong);
    }
    if !password.chars().any(char::is_alphabetic) || !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PolicyError::NeedsLettersAndNumbers);
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(PolicyError::IsEmail);
    }
    Ok(())
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl HashParams {
    /// Production: 64 MiB, 2 passes. `proplink bench argon2` measured 110 ms to hash and 104 ms
    /// to verify on a 2-core machine (target 50–150 ms; 3 passes cost 163 ms).
    pub const PRODUCTION: HashParams = HashParams {
        memory_kib: 65_536,
        iterations: 2,
        lanes: 1,
    };
    /// Tests only: fast, still Argon2id.
    pub const TESTING: HashParams = HashParams {
        memory_kib: 1_024,
        iterations: 1,
        lanes: 1,
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("the password hashing parameters are invalid: {0}")]
    Params(String),
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

struct Inner {
    argon: Argon2<'static>,
    dummy: String,
    /// At most one hash per core at a time: each takes 64 MiB, and a flood of sign-in attempts
    /// must queue rather than exhaust memory.
    permits: Arc<tokio::sync::Semaphore>,
}

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasherPool(Arc<Inner>);

impl PasswordHasherPool {
    pub fn new(params: HashParams) -> Result<Self, HashError> {
        let p = Params::new(params.memory_kib, params.iterations, params.lanes, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let dummy = argon
            .hash_password(b"a password nobody has: it only spends the time")
            .map_err(|e| HashError::Hash(e.to_string()))?
            .to_string();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let permits = Arc::new(tokio::sync::Semaphore::new(cores));
        Ok(Self(Arc::new(Inner {
            argon,
            dummy,
            permits,
        })))
    }

    /// Hashes a password (PHC string) on a blocking thread.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let inner = self.0.clone();
        let permit = inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner
                .argon
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await
        .map_err(|e| HashError::Hash(e.to_string()))?
    }

    /// Verifies on a blocking thread. With no stored hash (unknown e-mail, or an invited user
    /// who has not chosen a password) it verifies against the dummy hash and returns false, so
    /// the answer takes the same time either way.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> bool {
        let inner = self.0.clone();
        let Ok(permit) = inner.permits.clone().acquire_owned().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let (hash, known) = match stored {
                Some(h) => (h, true),
                None => (inner.dummy.clone(), false),
            };
            let ok = inner
                .argon
                .verify_password(password.expose_secret().as_bytes(), hash.as_str())
                .is_ok();
            ok && known
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_wants_twelve_characters_with_letters_and_numbers() {
        assert_eq!(check_policy("short1", "a@b.co"), Err(PolicyError::TooShort));
        assert_eq!(
            check_policy("onlyletterslong", "a@b.co"),
            Err(PolicyError::NeedsLettersAndNumbers)
        );
        assert_eq!(
            check_policy("123456789012", "a@b.co"),
            Err(PolicyError::NeedsLettersAndNumbers)
        );
        assert_eq!(
            check_policy("jane1@goldcrest.co.uk", "Jane1@Goldcrest.co.uk"),
            Err(PolicyError::IsEmail)
        );
        assert_eq!(
            check_policy(&"a1".repeat(129), "a@b.co"),
            Err(PolicyError::TooLong)
        );
        assert_eq!(check_policy("correct horse 42 battery", "a@b.co"), Ok(()));
        // Twelve characters, not twelve bytes.
        assert_eq!(check_policy("ééééééééééé1", "a@b.co"), Ok(()));
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = PasswordHasherPool::new(HashParams::TESTING).unwrap();
        let hash = hasher
            .hash(SecretString::from("correct horse 42".to_owned()))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(
            hasher
                .verify(
                    SecretString::from("correct horse 42".to_owned()),
                    Some(hash.clone())
                )
                .await
        );
        assert!(
            !hasher
                .verify(
                    SecretString::from("correct horse 43".to_owned()),
                    Some(hash.clone())
                )
                .await
        );
        // Hashes are salted: the same password twice gives two hashes.
        let again = hasher
            .hash(SecretString::from("correct horse 42".to_owned()))
            .await
            .unwrap();
        assert_ne!(hash, again);
    }

    #[tokio::test]
    async fn an_unknown_user_is_refused_after_the_same_work() {
        let hasher = PasswordHasherPool::new(HashParams::TESTING).unwrap();
        assert!(
            !hasher
                .verify(
                    SecretString::from("a password nobody has: it only spends the time".to_owned()),
                    None
                )
                .await
        );
        assert!(
            !hasher
                .verify(SecretString::from("anything at all 1".to_owned()), None)
                .await
        );
    }

    #[test]
    fn the_production_parameters_are_accepted() {
        assert!(PasswordHasherPool::new(HashParams::PRODUCTION).is_ok());
    }
}
