//! Admin passwords: the typed password (never printed), argon2id hashing off
//! the async runtime, and checks that take as long for unknown accounts.

use argon2::{Argon2, PasswordHash, PasswordHasher};

use crate::domain::error::{DomainError, DomainResult};

/// A password as typed: never printed.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    /// Longer input is refused before any hashing (argon2 reads all of it).
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: String) -> DomainResult<Self> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(DomainError::validation(format!(
                "a password needs at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(DomainError::validation(
                "a password must be at most 1024 bytes",
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Argon2id with OWASP parameters (m = 19456 KiB, t = 2, p = 1).
pub fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes off the async runtime (on the hashing threads): argon2 takes tens
/// of milliseconds and ~19 MiB by design.
pub async fn hash_password(password: Password) -> DomainResult<String> {
    crate::domain::crypto::argon2_threads::run(move || {
        argon2()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("failed to hash a password: {err}"))
    })
    .await?
    .map_err(DomainError::Internal)
}

/// Checks `password` against `stored`, or against a dummy hash when the
/// account does not exist, so both cases take the same time. `slot` (a
/// hashing permit) is held until the hash is done, even if the request is
/// dropped meanwhile: the hashing job is what costs memory and CPU.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> DomainResult<bool> {
    crate::domain::crypto::argon2_threads::run(move || {
        let _slot = slot;
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&hash)
            .map_err(|err| anyhow::anyhow!("stored password hash is invalid: {err}"))?;
        let ok = verify_in_reused_memory(password.as_bytes(), &parsed)?;
        Ok::<_, anyhow::Error>(exists && ok)
    })
    .await?
    .map_err(DomainError::Internal)
}

thread_local! {
    /// Argon2's working memory (~19 MiB), allocated once per hashing thread
    /// and reused by every check on it: allocating it per check let the
    /// allocator keep a freed copy in each arena a thread wandered into,
    /// hundreds of MiB under a sign-in flood, never returned.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `argon2().verify_password`, but in this thread's reused working memory.
fn verify_in_reused_memory(password: &[u8], hash: &PasswordHash) -> anyhow::Result<bool> {
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Ok(false);
    };
    let invalid =
        |err: &dyn std::fmt::Display| anyhow::anyhow!("stored password hash is invalid: {err}");
    let params = argon2::Params::try_from(hash).map_err(|e| invalid(&e))?;
    let algorithm =
        argon2::Algorithm::try_from(hash.algorithm.as_str()).map_err(|e| invalid(&e))?;
    let version = hash
        .version
        .map(argon2::Version::try_from)
        .transpose()
        .map_err(|e| invalid(&e))?
        .unwrap_or_default();
    let blocks_needed = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < blocks_needed {
            blocks.resize(blocks_needed, argon2::Block::default());
        }
        hasher
            .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..blocks_needed])
            .map_err(|e| invalid(&e))
    })?;
    Ok(bool::from(subtle::ConstantTimeEq::ct_eq(
        &out[..],
        expected.as_bytes(),
    )))
}

/// The argon2id hash of a random string nobody knows, with the same parameters as real hashes.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vf9pc9CP8G5Z5pB5r6k0bB9o9S7c0vGvQz0t4M2Yc5Q";

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    #[test]
    fn dummy_hash_is_a_valid_argon2id_hash_with_real_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(argon2().verify_password(b"anything", &parsed).is_err());
        assert!(!verify_in_reused_memory(b"anything", &parsed).expect("checks"));
    }

    #[test]
    fn reused_memory_verification_agrees_with_argon2() {
        let hash = argon2()
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        let parsed = PasswordHash::new(&hash).expect("parses");
        assert!(verify_in_reused_memory(b"correct horse", &parsed).expect("checks"));
        assert!(!verify_in_reused_memory(b"correct horsE", &parsed).expect("checks"));
        assert!(verify_in_reused_memory(b"correct horse", &parsed).expect("twice, same memory"));
    }

    #[test]
    fn short_passwords_are_refused_and_debug_hides_them() {
        assert!(Password::parse("short".into()).is_err());
        let p = Password::parse("correct horse battery".into()).expect("long enough");
        assert!(!format!("{p:?}").contains("horse"));
    }
}
