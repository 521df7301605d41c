//! The signing secret: shown once, stored sealed under the pepper, and the
//! `Keysmith-Signature` it produces.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::{UnixTime, random};
use crate::error::{AppError, AppResult};
use keysmith_verify::Peppers;

const PREFIX: &str = "whsec_";
/// Random base62 characters after the prefix; at most 32, the pad's length.
const RANDOM_LEN: usize = 32;

/// A signing secret in clear, only in memory. `Debug` hides it.
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    pub fn generate() -> Self {
        Self(format!("{PREFIX}{}", random::base62(RANDOM_LEN)))
    }

    /// The one place the secret leaves memory: the creation response.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `t=<unix>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>`, the scheme Stripe uses.
    pub fn signature(&self, at: UnixTime, body: &str) -> String {
        let unix = at.secs();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(format!("{unix}.{body}").as_bytes());
        format!("t={unix},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// `v<version>:<nonce>:<random part XOR HMAC(pepper, context ‖ endpoint ‖ nonce)>`,
    /// bound to the endpoint so a sealed secret copied to another row does not open.
    pub fn seal(&self, peppers: &Peppers, endpoint_id: &str) -> AppResult<String> {
        let nonce = random::base62(22);
        let version = peppers.current_version();
        let pad = pad(peppers, version, endpoint_id, &nonce)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no current pepper")))?;
        let random = self.0.trim_start_matches(PREFIX).as_bytes();
        let sealed: Vec<u8> = random.iter().zip(pad).map(|(s, p)| s ^ p).collect();
        Ok(format!("v{version}:{nonce}:{}", hex::encode(sealed)))
    }

    pub fn open(peppers: &Peppers, endpoint_id: &str, sealed: &str) -> AppResult<Self> {
        let broken = || {
            AppError::Internal(anyhow::anyhow!(
                "a stored webhook secret cannot be read (pepper missing?)"
            ))
        };
        let mut parts = sealed.splitn(3, ':');
        let version: i64 = parts
            .next()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
            .ok_or_else(broken)?;
        let nonce = parts.next().ok_or_else(broken)?;
        let bytes = hex::decode(parts.next().ok_or_else(broken)?).map_err(|_| broken())?;
        let pad = pad(peppers, version, endpoint_id, nonce).ok_or_else(broken)?;
        let random: Vec<u8> = bytes.iter().zip(pad).map(|(s, p)| s ^ p).collect();
        let random = String::from_utf8(random).map_err(|_| broken())?;
        Ok(Self(format!("{PREFIX}{random}")))
    }
}

fn pad(peppers: &Peppers, version: i64, endpoint_id: &str, nonce: &str) -> Option<[u8; 32]> {
    peppers.digest(
        version,
        format!("keysmith webhook secret v1\0{endpoint_id}\0{nonce}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_for_its_endpoint_and_hides_in_debug() {
        let dir = tempfile::tempdir().expect("dir");
        let peppers = Peppers::load_or_create(&dir.path().join("pepper")).expect("pepper");
        let secret = WebhookSecret::generate();
        let sealed = secret.seal(&peppers, "wh1").expect("seal");
        assert!(!sealed.contains(secret.expose().trim_start_matches(PREFIX)));
        let opened = WebhookSecret::open(&peppers, "wh1", &sealed).expect("open");
        assert_eq!(opened.expose(), secret.expose());
        let other = WebhookSecret::open(&peppers, "wh2", &sealed).map(|s| s.0);
        assert!(other.map_or(true, |o| o != secret.0));
        assert!(!format!("{secret:?}").contains(&secret.0));
    }

    #[test]
    fn signature_is_stripe_style() {
        let secret = WebhookSecret("whsec_test".into());
        let sig = secret.signature(UnixTime::from_secs(1_700_000_000), "{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
    }
}
