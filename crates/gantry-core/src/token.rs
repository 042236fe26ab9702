//! API token secrets: generation, hashing, constant-time comparison.

use gantry_api_types::TokenKind;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new secret: `gantry-<kind>-<40 random base62 characters>` (238 bits).
pub fn generate(kind: TokenKind) -> String {
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("gantry-{}-{body}", kind.as_str())
}

/// The stored form of a secret: SHA-256, hex. Secrets are high-entropy, so a
/// fast hash is enough (no password stretching needed).
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two hashes (or secrets).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The displayable prefix of a secret.
pub fn prefix(secret: &str) -> String {
    secret.chars().take(18).collect()
}

/// A new random id (16 hex characters).
pub fn new_id() -> String {
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hash_stably() {
        let a = generate(TokenKind::Server);
        let b = generate(TokenKind::Server);
        assert_ne!(a, b);
        assert!(a.starts_with("gantry-server-"));
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(ct_eq(&hash(&a), &hash(&a)));
        assert!(!ct_eq(&hash(&a), &hash(&b)));
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
