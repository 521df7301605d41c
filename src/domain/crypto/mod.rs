//! Secrets at rest: random ids and tokens, sealing under the pepper (AEAD),
//! hashes of high-entropy secrets, and the threads argon2 runs on.

pub mod argon2_threads;
pub mod random;
pub mod sealed;

/// Hex SHA-256 of a high-entropy secret (a form token, a session id): what
/// the database keeps instead of the secret. No salt or stretching needed:
/// the input is random, not chosen by a person.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}
