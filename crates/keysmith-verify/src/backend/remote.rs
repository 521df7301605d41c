//! Verification through a Keysmith server: `POST /api/v1/verify` over rustls.

use serde::{Deserialize, Serialize};

use super::{BackendError, VerdictFuture, Verifier};
use crate::{
    allowlist::{Allowlist, Capabilities},
    limit::{KeyLimits, Quota, RateLimit},
    outcome::{Refusal, TokenGrant, VerifiedKey, VerifyCode},
    timestamp,
    tls::{self, TlsError},
};

/// Asks a Keysmith server (`POST /api/v1/verify`) with a management key of the tenant.
#[derive(Clone)]
pub struct RemoteVerifier {
    pub(crate) client: reqwest::Client,
    /// The server's root, without a trailing `/`.
    pub(crate) base_url: String,
    endpoint: String,
    pub(crate) management_key: String,
}

impl std::fmt::Debug for RemoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteVerifier")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl RemoteVerifier {
    /// `base_url` is the server's root, e.g. `https://keysmith.internal`;
    /// `management_key` needs the `keysmith:verify` (or `keysmith:admin`) scope.
    pub fn new(base_url: &str, management_key: String) -> Result<Self, TlsError> {
        Self::with_roots(base_url, management_key, None)
    }

    /// As [`RemoteVerifier::new`], also trusting the PEM root certificates
    /// in `extra_roots_pem` (a private CA).
    pub fn with_roots(
        base_url: &str,
        management_key: String,
        extra_roots_pem: Option<&[u8]>,
    ) -> Result<Self, TlsError> {
        let client = tls::client_builder(extra_roots_pem)?
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|err| TlsError::BadCertificate(err.to_string()))?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            client,
            endpoint: format!("{base_url}/api/v1/verify"),
            base_url,
            management_key,
        })
    }
}

#[derive(Serialize)]
struct RemoteRequest<'a> {
    key: &'a str,
}

#[derive(Deserialize)]
struct RemoteResponse {
    code: VerifyCode,
    key_id: Option<String>,
    service_user_id: Option<String>,
    service_user: Option<String>,
    tenant: Option<String>,
    expires_at: Option<String>,
    scopes: Option<Vec<String>>,
    allowed_tools: Option<Vec<String>>,
    /// Absent from older servers: read under least privilege, as the
    /// server reads its own rows.
    #[serde(default)]
    allowed_resources: Option<Vec<String>>,
    #[serde(default)]
    allowed_prompts: Option<Vec<String>>,
    /// Absent from older servers: no limits.
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    quota: Option<Quota>,
    /// Set when the credential was an OAuth access token (absent from older servers).
    #[serde(default)]
    token: Option<RemoteToken>,
}

#[derive(Deserialize)]
struct RemoteToken {
    token_id: String,
    resource: String,
    scope: String,
    /// Absent from older servers (and for client credentials).
    #[serde(default)]
    grant_id: Option<String>,
    /// Absent from older servers.
    #[serde(default)]
    client_id: Option<String>,
}

impl RemoteResponse {
    fn identity(self) -> Option<VerifiedKey> {
        let valid_until = time::OffsetDateTime::parse(
            self.expires_at.as_deref()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        let tenant = self.tenant?;
        Some(VerifiedKey {
            key_id: self.key_id?,
            // The remote API speaks slugs; the slug is the stable tenant name here.
            tenant_id: tenant.clone(),
            tenant_slug: tenant,
            service_user_id: self.service_user_id?,
            service_user_name: self.service_user.unwrap_or_default(),
            valid_until: timestamp::from_unix(valid_until.unix_timestamp()),
            scopes: self.scopes.unwrap_or_default(),
            // An entry that cannot be read allows nothing: fail closed.
            allowed: Capabilities::new(
                Allowlist::from_remote(self.allowed_tools),
                Allowlist::from_remote(self.allowed_resources),
                Allowlist::from_remote(self.allowed_prompts),
            ),
            limits: KeyLimits {
                rate_limit: self.rate_limit,
                quota: self.quota,
            },
            token: self.token.map(|t| TokenGrant {
                token_id: t.token_id,
                resource: t.resource,
                scope: t.scope,
                grant_id: t.grant_id,
                client_id: t.client_id,
            }),
        })
    }
}

impl Verifier for RemoteVerifier {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        Box::pin(async move {
            let unavailable = BackendError::Remote;
            let response = self
                .client
                .post(&self.endpoint)
                .bearer_auth(&self.management_key)
                .json(&RemoteRequest { key: presented })
                .send()
                .await
                .map_err(|err| {
                    unavailable(format!(
                        "keysmith server unreachable: {}",
                        err.without_url()
                    ))
                })?;
            if !response.status().is_success() {
                return Err(unavailable(format!(
                    "keysmith server answered {}",
                    response.status()
                )));
            }
            let body: RemoteResponse = response.json().await.map_err(|err| {
                unavailable(format!("unreadable verify response: {}", err.without_url()))
            })?;
            let code = body.code;
            let key_id = body.key_id.clone();
            let identity = body.identity();
            Ok(match (code, identity) {
                (VerifyCode::Valid, Some(identity)) => Ok(identity),
                (VerifyCode::Valid, None) => Err(Refusal {
                    code: VerifyCode::NotFound,
                    key_id,
                    known: None,
                }),
                (code, known) => Err(Refusal {
                    code,
                    key_id,
                    known: known.map(Box::new),
                }),
            })
        })
    }
}
