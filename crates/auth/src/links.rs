//! Tokens for signed links (ContractorPort), hand-offs between hosts, invitations and password
//! resets: 256 random bits, sent as 43 characters of URL-safe base64, stored only as SHA-256.
//! With 256 bits a plain hash is enough: there is nothing to search.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

pub const TOKEN_CHARS: usize = 43;

/// A new token and the hash to store.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The stored hash for a token from a link, or None when the text cannot be one of ours (so a
/// mangled link is refused without a database look-up).
pub fn hash_token(token: &str) -> Option<String> {
    let ok = token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD
            .decode(token)
            .map(|b| b.len() == 32)
            .unwrap_or(false);
    ok.then(|| hash(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_stored_as_hashes() {
        let (token, stored) = new_token();
        assert_eq!(token.len(), TOKEN_CHARS);
        assert_eq!(hash_token(&token), Some(stored.clone()));
        assert_eq!(stored.len(), 64);
        assert_ne!(new_token().0, token);
    }

    #[test]
    fn mangled_tokens_are_refused_before_any_look_up() {
        let (token, _) = new_token();
        assert_eq!(
            hash_token(&token[..42]),
            None,
            "truncated by an e-mail client"
        );
        assert_eq!(hash_token(&format!("{token}x")), None);
        assert_eq!(
            hash_token(&token.replace(|c: char| c.is_ascii_alphabetic(), "+")),
            None
        );
        assert_eq!(hash_token(""), None);
    }
}
