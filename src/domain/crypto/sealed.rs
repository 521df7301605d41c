//! Secrets the server must read back (TOTP secrets, webhook signing secrets),
//! sealed under the pepper with ChaCha20-Poly1305. A copy of the database
//! alone reads none of them, and a sealed value that was altered, or copied
//! to another row or purpose, fails to open rather than opening to something
//! else.
//!
//! Stored as `s2:<pepper version>:<base64url(nonce ‖ ciphertext ‖ tag)>`:
//! key = HMAC(pepper of that version, [`KEY_CONTEXT`]), a random 96-bit nonce
//! per seal, associated data = purpose ‖ 0 ‖ row id. The format and the
//! context strings must never change: rows sealed with them would not open.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    ChaCha20Poly1305, Key, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use sqlx::AnyPool;

use crate::domain::error::{DomainError, DomainResult};
use keysmith_verify::Peppers;

const PREFIX: &str = "s2:";
const KEY_CONTEXT: &[u8] = b"keysmith sealed s2 key";
const NONCE_LEN: usize = 12;

/// What a sealed value is for; part of the associated data, so a value
/// sealed for one purpose does not open as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An admin account's TOTP secret; the row id is the admin user's id.
    TotpSecret,
    /// A webhook endpoint's signing secret; the row id is the endpoint's id.
    WebhookSecret,
    /// The first answer to an Idempotency-Key (it may hold a key shown
    /// once); the row id is the scope and the client's key.
    IdempotentResponse,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::TotpSecret => "TOTP secret",
            Self::WebhookSecret => "webhook secret",
            Self::IdempotentResponse => "idempotent response",
        }
    }

    fn associated_data(self, row_id: &str) -> Vec<u8> {
        let purpose = match self {
            Self::TotpSecret => "keysmith totp secret s2",
            Self::WebhookSecret => "keysmith webhook secret s2",
            Self::IdempotentResponse => "keysmith idempotent response s2",
        };
        format!("{purpose}\0{row_id}").into_bytes()
    }
}

/// Why a stored value does not open. Every case is an error, never a wrong
/// plaintext.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a stored {0} is not in a sealed format")]
    Malformed(&'static str),
    #[error(
        "a stored {purpose} was sealed under pepper version {version}, which is not loaded (KEYSMITH_PEPPER_FILE)"
    )]
    PepperMissing { purpose: &'static str, version: i64 },
    #[error("a stored {0} was altered or belongs to another row")]
    Rejected(&'static str),
}

impl From<SealError> for DomainError {
    fn from(err: SealError) -> Self {
        Self::Internal(anyhow::Error::new(err))
    }
}

fn cipher(
    peppers: &Peppers,
    version: i64,
    purpose: Purpose,
) -> Result<ChaCha20Poly1305, SealError> {
    let key = peppers
        .digest(version, KEY_CONTEXT)
        .ok_or(SealError::PepperMissing {
            purpose: purpose.label(),
            version,
        })?;
    Ok(ChaCha20Poly1305::new(&Key::from(key)))
}

/// Seals `plaintext` for `row_id` under the current pepper.
pub fn seal(
    peppers: &Peppers,
    purpose: Purpose,
    row_id: &str,
    plaintext: &[u8],
) -> DomainResult<String> {
    let version = peppers.current_version();
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| DomainError::Internal(anyhow::anyhow!("random: {e}")))?;
    let aad = purpose.associated_data(row_id);
    let sealed = cipher(peppers, version, purpose)?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| {
            DomainError::Internal(anyhow::anyhow!("sealing a {} failed", purpose.label()))
        })?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{version}:{}", URL_SAFE_NO_PAD.encode(out)))
}

/// Opens a value sealed by [`seal`] for the same purpose and row. Only
/// that format: a legacy value is re-sealed at start-up ([`reseal_legacy`])
/// or not at all, never read on the way (it is unauthenticated, so a row
/// written as `v1:x:` would open to an empty secret an attacker knows).
pub fn open(
    peppers: &Peppers,
    purpose: Purpose,
    row_id: &str,
    sealed: &str,
) -> Result<Vec<u8>, SealError> {
    let malformed = || SealError::Malformed(purpose.label());
    let rest = sealed.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let (version, body) = rest.split_once(':').ok_or_else(malformed)?;
    let version: i64 = version.parse().map_err(|_| malformed())?;
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| malformed())?;
    if bytes.len() < NONCE_LEN {
        return Err(malformed());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| malformed())?;
    let aad = purpose.associated_data(row_id);
    cipher(peppers, version, purpose)?
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Rejected(purpose.label()))
}

/// The columns holding sealed values: `(table, column, purpose)`. Fixed
/// names, never input.
const SEALED_COLUMNS: [(&str, &str, Purpose); 3] = [
    ("admin_users", "totp_secret", Purpose::TotpSecret),
    ("admin_users", "totp_pending", Purpose::TotpSecret),
    ("webhook_endpoints", "secret_sealed", Purpose::WebhookSecret),
];

/// Re-seals every value still in the legacy format; run once at start-up so
/// no legacy value outlives it. Each row is rewritten only if it still holds
/// the value read (another instance may be doing the same). A value whose
/// pepper is gone is logged and left: it could not be read before either.
/// Returns how many values were re-sealed.
#[tracing::instrument(skip_all)]
pub async fn reseal_legacy(pool: &AnyPool, peppers: &Peppers) -> DomainResult<u64> {
    let mut resealed = 0;
    for (table, column, purpose) in SEALED_COLUMNS {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE '{PREFIX}%'"
        ))
        .fetch_all(pool)
        .await?;
        for (id, old) in rows {
            let plaintext = match legacy::open(peppers, purpose, &id, &old) {
                Ok(plaintext) => plaintext,
                Err(err) => {
                    tracing::error!(table, column, id, error = %err, "a legacy sealed value cannot be re-sealed");
                    continue;
                }
            };
            let done = sqlx::query(&format!(
                "UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3"
            ))
            .bind(seal(peppers, purpose, &id, &plaintext)?)
            .bind(&id)
            .bind(&old)
            .execute(pool)
            .await?;
            resealed += done.rows_affected();
        }
    }
    if resealed > 0 {
        tracing::info!(resealed, "re-sealed legacy secrets with ChaCha20-Poly1305");
    }
    Ok(resealed)
}

/// LEGACY, read only by [`reseal_legacy`] at start-up: the format before
/// `s2`. Nothing writes it and nothing else reads it. `v<version>:<nonce>:
/// <hex(plaintext XOR HMAC(pepper, context ‖ 0 ‖ row ‖ 0 ‖ nonce))>`:
/// unauthenticated, so a wrong row opens to garbage, not an error, and a
/// value shorter than a whole secret is refused here rather than re-sealed
/// as a shorter one. Remove once every deployment has started on `s2`.
mod legacy {
    use super::{Peppers, Purpose, SealError};

    /// The shortest secret the legacy format ever held (a TOTP secret).
    const MIN_SECRET_BYTES: usize = 20;

    fn context(purpose: Purpose) -> &'static str {
        match purpose {
            Purpose::TotpSecret => "keysmith totp secret v1",
            Purpose::WebhookSecret => "keysmith webhook secret v1",
            // Born after the legacy format: no such value exists, and none opens.
            Purpose::IdempotentResponse => "keysmith idempotent response (never legacy)",
        }
    }

    pub(super) fn open(
        peppers: &Peppers,
        purpose: Purpose,
        row_id: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, SealError> {
        let malformed = || SealError::Malformed(purpose.label());
        let mut parts = sealed.splitn(3, ':');
        let version: i64 = parts
            .next()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
            .ok_or_else(malformed)?;
        let nonce = parts.next().ok_or_else(malformed)?;
        let bytes = hex::decode(parts.next().ok_or_else(malformed)?).map_err(|_| malformed())?;
        let pad = peppers
            .digest(
                version,
                format!("{}\0{row_id}\0{nonce}", context(purpose)).as_bytes(),
            )
            .ok_or(SealError::PepperMissing {
                purpose: purpose.label(),
                version,
            })?;
        // Every secret sealed in this format was 20 (TOTP) or 32 (webhook)
        // bytes; anything shorter was cut or written by hand.
        if bytes.len() > pad.len() || bytes.len() < MIN_SECRET_BYTES {
            return Err(malformed());
        }
        Ok(bytes.iter().zip(pad).map(|(s, p)| s ^ p).collect())
    }

    /// What older versions wrote, for tests of the upgrade path.
    #[cfg(test)]
    pub(super) fn seal(peppers: &Peppers, purpose: Purpose, row_id: &str, plain: &[u8]) -> String {
        let version = peppers.current_version();
        let nonce = crate::domain::crypto::random::base62(22);
        let pad = peppers
            .digest(
                version,
                format!("{}\0{row_id}\0{nonce}", context(purpose)).as_bytes(),
            )
            .expect("current pepper");
        let sealed: Vec<u8> = plain.iter().zip(pad).map(|(s, p)| s ^ p).collect();
        format!("v{version}:{nonce}:{}", hex::encode(sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Peppers {
        Peppers::parse(text).expect("peppers")
    }

    fn fresh() -> Peppers {
        parse(&Peppers::fresh_file_text().expect("pepper"))
    }

    #[test]
    fn sealed_values_open_for_their_purpose_and_row_only() {
        let peppers = fresh();
        let sealed = seal(&peppers, Purpose::TotpSecret, "u1", b"secret").expect("seal");
        assert!(sealed.starts_with("s2:1:"), "{sealed}");
        let open_as = |purpose, row| open(&peppers, purpose, row, &sealed);
        assert_eq!(open_as(Purpose::TotpSecret, "u1").expect("open"), b"secret");
        assert!(matches!(
            open_as(Purpose::TotpSecret, "u2"),
            Err(SealError::Rejected(_))
        ));
        assert!(matches!(
            open_as(Purpose::WebhookSecret, "u1"),
            Err(SealError::Rejected(_))
        ));
        let again = seal(&peppers, Purpose::TotpSecret, "u1", b"secret").expect("seal");
        assert_ne!(sealed, again, "a fresh nonce each time");
    }

    #[test]
    fn any_altered_byte_is_an_error() {
        let peppers = fresh();
        let sealed = seal(&peppers, Purpose::WebhookSecret, "wh1", b"0123456789").expect("seal");
        let body = sealed.strip_prefix("s2:1:").expect("prefix");
        let mut bytes = URL_SAFE_NO_PAD.decode(body).expect("base64");
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            let altered = format!("s2:1:{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(
                matches!(
                    open(&peppers, Purpose::WebhookSecret, "wh1", &altered),
                    Err(SealError::Rejected(_))
                ),
                "byte {i}"
            );
            bytes[i] ^= 0x01;
        }
        bytes.pop();
        let short = format!("s2:1:{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert!(open(&peppers, Purpose::WebhookSecret, "wh1", &short).is_err());
        for broken in ["s2:1:", "s2:x:AAAA", "s2:1:%%%", "s2:1"] {
            assert!(
                open(&peppers, Purpose::WebhookSecret, "wh1", broken).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn a_missing_pepper_version_says_so() {
        let one = "1 0000000000000000000000000000000000000000000000000000000000000000";
        let two = "2 1111111111111111111111111111111111111111111111111111111111111111";
        let both = parse(&format!("{one}\n{two}\n"));
        let sealed = seal(&both, Purpose::TotpSecret, "u1", b"s").expect("seal");
        assert!(sealed.starts_with("s2:2:"));
        let err = open(&parse(one), Purpose::TotpSecret, "u1", &sealed).expect_err("missing");
        assert!(matches!(err, SealError::PepperMissing { version: 2, .. }));
        assert!(err.to_string().contains("pepper version 2"), "{err}");
        // An older version still loaded keeps opening what it sealed.
        let old = seal(&parse(one), Purpose::TotpSecret, "u1", b"s").expect("seal");
        assert_eq!(
            open(&both, Purpose::TotpSecret, "u1", &old).expect("open"),
            b"s"
        );
    }

    #[test]
    fn legacy_values_open_only_for_resealing() {
        let peppers = fresh();
        let old = legacy::seal(
            &peppers,
            Purpose::WebhookSecret,
            "wh1",
            b"0123456789abcdef0123",
        );
        assert!(old.starts_with("v1:"));
        assert!(
            matches!(
                open(&peppers, Purpose::WebhookSecret, "wh1", &old),
                Err(SealError::Malformed(_))
            ),
            "the legacy format is not read on the way"
        );
        let opened = legacy::open(&peppers, Purpose::WebhookSecret, "wh1", &old).expect("open");
        assert_eq!(opened, b"0123456789abcdef0123");
        let two = "2 1111111111111111111111111111111111111111111111111111111111111111";
        assert!(matches!(
            legacy::open(&parse(two), Purpose::WebhookSecret, "wh1", &old),
            Err(SealError::PepperMissing { version: 1, .. })
        ));
        // Empty, cut or hand-written values are refused even for re-sealing.
        let cut = &old[..old.len() - 2];
        for broken in ["v1:x:", "v1::", "v1:x:00", "", cut] {
            assert!(
                legacy::open(&peppers, Purpose::WebhookSecret, "wh1", broken).is_err(),
                "{broken:?}"
            );
            assert!(
                open(&peppers, Purpose::WebhookSecret, "wh1", broken).is_err(),
                "{broken:?}"
            );
        }
    }
}
