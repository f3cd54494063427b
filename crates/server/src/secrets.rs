//! Making and checking secrets: random generation, bcrypt off the async
//! threads, and constant-time comparison of digests.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh secret: 40 alphanumerics (about 238 bits). No `.` so that
/// `<key>.<secret>` splits unambiguously.
pub(crate) fn generate() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// SHA-256 of a secret, the form kept in the verification cache: equal
/// length digests make the comparison constant-time whatever the input.
pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of two byte strings (length may leak, content not).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// bcrypt-hashes `secret` on the blocking pool (a cost-12 hash takes about
/// 250 ms of CPU, which must not stall the async workers).
pub(crate) async fn hash(secret: String, cost: u32) -> Result<String, crate::error::ApiError> {
    tokio::task::spawn_blocking(move || bcrypt::hash(secret, cost))
        .await
        .map_err(|_| crate::error::ApiError::internal("hashing task failed"))?
        .map_err(|_| crate::error::ApiError::internal("hashing failed"))
}

/// Checks `secret` against a bcrypt `hash` on the blocking pool. A malformed
/// hash counts as a mismatch.
pub(crate) async fn verify(secret: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::verify(secret, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}
