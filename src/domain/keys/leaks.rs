//! Leaked keys, reported by a secret scanner (GitHub's partner program):
//! a genuine key is revoked within the request, its owner told, and the
//! reported plaintext never stored — only looked up, by its key id, checksum
//! and peppered hash, like any presented key.

use crate::domain::{KeyId, TenantId};
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use p256::ecdsa::{DerSignature, VerifyingKey, signature::Verifier};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use keysmith_verify::SqlVerifier;
use sqlx::AnyPool;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::{Actor, keys, tenancy::tenants};

/// GitHub's public keys for its signatures, as its key endpoint serves them
/// (`{"public_keys": [{"key_identifier", "key", "is_current"}]}`), read from
/// the file named by `KEYSMITH_GITHUB_SCANNING_KEYS`.
#[derive(Debug, Clone)]
pub struct ScannerKeys(Vec<(String, VerifyingKey)>);

#[derive(Deserialize)]
struct KeySet {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

impl ScannerKeys {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let set: KeySet = serde_json::from_str(&raw)
            .with_context(|| format!("{} is not a GitHub public key set", path.display()))?;
        let keys = set
            .public_keys
            .into_iter()
            .map(|k| {
                VerifyingKey::from_public_key_pem(&k.key)
                    .map(|key| (k.key_identifier.clone(), key))
                    .map_err(|e| {
                        anyhow::anyhow!("key {}: not a P-256 public key: {e}", k.key_identifier)
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "{} lists no key", path.display());
        Ok(Self(keys))
    }

    /// Whether `signature` (base64 of a DER ECDSA signature) signs `body`
    /// with the key named `identifier`.
    pub fn verify(&self, identifier: &str, signature: &str, body: &[u8]) -> bool {
        let Some((_, key)) = self.0.iter().find(|(id, _)| id == identifier) else {
            return false;
        };
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        let Ok(signature) = DerSignature::try_from(der.as_slice()) else {
            return false;
        };
        key.verify(body, &signature).is_ok()
    }
}

/// One reported token (the routes read GitHub's and GitLab's formats).
#[derive(Debug)]
pub struct Report {
    pub token: String,
    pub token_type: String,
    /// Where the token was found.
    pub url: String,
    pub source: String,
}

/// The most of a reported location kept in a revocation reason.
const LOCATION_MAX_CHARS: usize = 200;

/// Where a report says the key was found, as data and never as prose: the
/// reporter chooses this text (GitLab's `location`, a GitHub URL), and it
/// reaches admin pages and the owner's email. At most
/// [`LOCATION_MAX_CHARS`] characters, control and bidirectional formatting
/// characters dropped, in quotes (inner quotes escaped); cut with `…`.
fn quoted_location(raw: &str) -> String {
    let shown = |c: &char| !c.is_control() && !crate::domain::values::types::is_bidi_control(*c);
    let mut kept: String = raw
        .trim()
        .chars()
        .filter(shown)
        .take(LOCATION_MAX_CHARS + 1)
        .collect();
    if kept.chars().count() > LOCATION_MAX_CHARS {
        kept = kept.chars().take(LOCATION_MAX_CHARS).collect();
        kept.push('…');
    }
    format!("\"{}\"", kept.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The verdict on one token; the token itself is answered by its SHA-256,
/// never echoed.
#[derive(Debug)]
pub struct Verdict {
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` (a genuine Keysmith key: revoked now if it still
    /// worked) or `false_positive`.
    pub label: &'static str,
}

/// Judges each report of `reporter` (e.g. "GitHub secret scanning"),
/// revoking the genuine keys that still work.
pub async fn handle(
    pool: &AnyPool,
    verifier: &SqlVerifier,
    reporter: &str,
    reports: Vec<Report>,
    now: OffsetDateTime,
) -> DomainResult<Vec<Verdict>> {
    let mut verdicts = Vec::with_capacity(reports.len());
    for report in reports {
        let genuine = revoke_if_genuine(pool, verifier, reporter, &report, now).await?;
        verdicts.push(Verdict {
            token_hash: hex::encode(Sha256::digest(report.token.as_bytes())),
            token_type: report.token_type,
            label: if genuine {
                "true_positive"
            } else {
                "false_positive"
            },
        });
    }
    Ok(verdicts)
}

/// Whether the token is a key Keysmith issued (whatever its state); a key
/// stored as active or rotating is revoked with reason `leaked` and where it
/// was found, even if its service user or tenant is disabled at the time.
async fn revoke_if_genuine(
    pool: &AnyPool,
    verifier: &SqlVerifier,
    reporter: &str,
    report: &Report,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    // A genuine key is revoked whatever else refuses it right now: a
    // disabled service user or tenant may be enabled again, and the leaked
    // key must not come back with it. Only its stored state counts (an
    // expired or revoked key is a conflict below: nothing left to do).
    let known = match verifier.verify(report.token.trim(), None, None).await? {
        Ok(key) => key,
        Err(refusal) => match refusal.known {
            Some(key) => *key,
            None => return Ok(false),
        },
    };
    let Some(tenant) = tenants::find_by_id(pool, &TenantId::new(known.tenant_id.as_str())).await?
    else {
        return Ok(false);
    };
    let reason = format!(
        "leaked: reported by {reporter} at {}",
        quoted_location(&report.url)
    );
    let actor = Actor::Scanner(reporter.to_owned());
    match keys::revoke(
        pool,
        &tenant,
        &KeyId::new(known.key_id.as_str()),
        &reason,
        &actor,
        now,
    )
    .await
    {
        Ok(_) => {
            tracing::warn!(key_id = %known.key_id, tenant = %tenant.slug, "leaked key revoked on a scanner's report");
            Ok(true)
        }
        // Revoked by a concurrent report a moment ago: genuine all the same.
        Err(DomainError::Conflict(_)) => Ok(true),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_quoted_bounded_and_flat() {
        assert_eq!(
            quoted_location(" https://x.test/a "),
            "\"https://x.test/a\""
        );
        let prose = "https://x.test/\n\nYour account is locked: call +1 555 0100\u{202E}moc.live";
        let quoted = quoted_location(prose);
        assert!(
            !quoted.contains('\n') && !quoted.contains('\u{202E}'),
            "{quoted}"
        );
        assert_eq!(quoted_location("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let long = quoted_location(&"x".repeat(10_000));
        assert_eq!(
            long.chars().count(),
            LOCATION_MAX_CHARS + 3,
            "quotes and the ellipsis"
        );
        assert!(long.ends_with("…\""));
        assert_eq!(
            quoted_location(&"y".repeat(LOCATION_MAX_CHARS))
                .chars()
                .count(),
            LOCATION_MAX_CHARS + 2
        );
    }
}
