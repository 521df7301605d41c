//! The signing secret: shown once, stored sealed under the pepper, and the
//! `Keysmith-Signature` it produces.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::{
    UnixTime, WebhookEndpointId,
    crypto::random,
    crypto::sealed::{self, Purpose},
};
use keysmith_verify::Peppers;

const PREFIX: &str = "whsec_";
/// Random base62 characters after the prefix.
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
        signature_header(at, body, std::slice::from_ref(self))
    }

    fn v1(&self, unix: i64, body: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(format!("{unix}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// `t=<unix>` and one `v1=` per secret, current first: during a rotation's
/// overlap the previous secret signs too, and a receiver accepts the event
/// if any `v1` matches the secret it holds (as with Stripe).
pub fn signature_header(at: UnixTime, body: &str, secrets: &[WebhookSecret]) -> String {
    let unix = at.secs();
    let mut header = format!("t={unix}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&secret.v1(unix, body));
    }
    header
}

impl WebhookSecret {
    /// Sealed for this endpoint (see [`sealed`]): a copy moved to another
    /// row does not open.
    pub fn seal(&self, peppers: &Peppers, endpoint_id: &WebhookEndpointId) -> DomainResult<String> {
        let random = self.0.trim_start_matches(PREFIX).as_bytes();
        sealed::seal(
            peppers,
            Purpose::WebhookSecret,
            endpoint_id.as_str(),
            random,
        )
    }

    pub fn open(
        peppers: &Peppers,
        endpoint_id: &WebhookEndpointId,
        sealed: &str,
    ) -> DomainResult<Self> {
        let random = sealed::open(
            peppers,
            Purpose::WebhookSecret,
            endpoint_id.as_str(),
            sealed,
        )?;
        let random = String::from_utf8(random).map_err(|_| {
            DomainError::Internal(anyhow::anyhow!("a stored webhook secret is not text"))
        })?;
        Ok(Self(format!("{PREFIX}{random}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_for_its_endpoint_and_hides_in_debug() {
        let dir = tempfile::tempdir().expect("dir");
        let peppers = Peppers::load_or_create(&dir.path().join("pepper")).expect("pepper");
        let secret = WebhookSecret::generate();
        let sealed = secret
            .seal(&peppers, &WebhookEndpointId::new("wh1"))
            .expect("seal");
        assert!(!sealed.contains(secret.expose().trim_start_matches(PREFIX)));
        let opened =
            WebhookSecret::open(&peppers, &WebhookEndpointId::new("wh1"), &sealed).expect("open");
        assert_eq!(opened.expose(), secret.expose());
        assert!(WebhookSecret::open(&peppers, &WebhookEndpointId::new("wh2"), &sealed).is_err());
        assert!(!format!("{secret:?}").contains(&secret.0));
    }

    #[test]
    fn signature_is_stripe_style() {
        let secret = WebhookSecret("whsec_test".into());
        let sig = secret.signature(UnixTime::from_secs(1_700_000_000), "{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
    }

    #[test]
    fn during_an_overlap_each_secret_signs() {
        let (new, old) = (
            WebhookSecret("whsec_new".into()),
            WebhookSecret("whsec_old".into()),
        );
        let at = UnixTime::from_secs(1_700_000_000);
        let both = signature_header(at, "{}", &[new, old]);
        let alone = |s: &str| WebhookSecret(s.into()).signature(at, "{}");
        let (new_v1, old_v1) = (alone("whsec_new"), alone("whsec_old"));
        assert_eq!(
            both,
            format!("{new_v1},{}", old_v1.trim_start_matches("t=1700000000,"))
        );
    }
}
