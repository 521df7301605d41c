//! The first stage: the bearer credential, verified (through the cache) for
//! a service of one tenant scope and, for an access token, of this resource.

use std::{sync::Arc, time::Instant};

use http::{StatusCode, request::Parts};

use super::{
    headers,
    refused::Refused,
    shared::{Shared, TenantScope},
};
use crate::{
    identity::Identity,
    outcome::{VerifiedKey, VerifyCode},
};

/// The metric's outcome for a genuine key of a tenant the layer does not serve.
pub(super) const OTHER_TENANT: &str = "other_tenant";

/// Why a request has no usable key: the answer, the metric's outcome, and
/// the key to audit the refusal against when it is genuine and of this
/// service's tenant.
#[derive(Debug)]
pub(super) struct Unverified {
    pub(super) refused: Refused,
    pub(super) outcome: &'static str,
    pub(super) known: Option<(Box<VerifiedKey>, VerifyCode)>,
}

impl Unverified {
    fn unknown(refused: Refused, outcome: &'static str) -> Self {
        Self {
            refused,
            outcome,
            known: None,
        }
    }
}

/// Verifies the bearer key for a service of `tenant`: the identity, or why
/// the request has none.
pub(super) async fn authenticate(
    shared: &Shared,
    tenant: &TenantScope,
    parts: &Parts,
) -> Result<Arc<Identity>, Unverified> {
    let Some(presented) = headers::bearer(&parts.headers) else {
        let refused = unauthorized(shared, "missing bearer key", false);
        return Err(Unverified::unknown(refused, "missing_key"));
    };
    let asked = Instant::now();
    let verdict = shared.verifier.identify(presented).await;
    shared.metrics.verify_time(asked.elapsed());
    match verdict {
        Ok(Ok(identity)) if !tenant.admits(&identity.key.tenant_slug) => {
            tracing::info!("key of another tenant refused");
            let refused = unauthorized(shared, VerifyCode::NotFound.as_str(), true);
            Err(Unverified::unknown(refused, OTHER_TENANT))
        }
        Ok(Ok(identity)) if !for_this_resource(shared, &identity.key) => {
            // Bound to another audience (RFC 8707): as if unknown here.
            tracing::info!("access token for another resource refused");
            let refused = unauthorized(shared, "token for another resource", true);
            Err(Unverified::unknown(refused, "other_resource"))
        }
        Ok(Ok(identity)) => Ok(identity),
        Ok(Err(refusal)) => {
            tracing::info!(
                code = refusal.code.as_str(),
                key_id = refusal.key_id.as_deref(),
                "key refused"
            );
            let known = refusal.known.filter(|k| tenant.admits(&k.tenant_slug));
            // Another tenant's key is refused as if it did not exist.
            let code = if known.is_some() {
                refusal.code
            } else {
                VerifyCode::NotFound
            };
            Err(Unverified {
                refused: unauthorized(shared, code.as_str(), true),
                outcome: code.as_str(),
                known: known.map(|k| (k, refusal.code)),
            })
        }
        Err(err) => {
            // Fail closed: no verdict, no pass.
            tracing::error!(error = %err, "key verification backend unavailable");
            let refused = Refused::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                VerifyCode::NotFound,
                "unavailable",
                "key verification is unavailable",
            );
            Err(Unverified::unknown(refused, "unavailable"))
        }
    }
}

/// Whether a verified credential may be used here: a key always, an
/// access token only at the resource it is bound to (stored canonical).
fn for_this_resource(shared: &Shared, key: &VerifiedKey) -> bool {
    key.token.as_ref().is_none_or(|token| {
        shared
            .resource
            .as_ref()
            .is_some_and(|resource| resource.resource() == token.resource)
    })
}

/// `401` with the challenge: the protected resource's metadata and scopes
/// when the layer is one (`invalid_token` when a credential was presented).
/// Its reason is never audited: an unusable key has no line of its own.
fn unauthorized(shared: &Shared, code: &str, presented: bool) -> Refused {
    let challenge = match (&shared.resource, &shared.resource_metadata) {
        (Some(resource), _) => resource.challenge(presented),
        (None, Some(url)) => format!("Bearer resource_metadata=\"{url}\""),
        (None, None) => "Bearer".to_owned(),
    };
    Refused::plain(
        StatusCode::UNAUTHORIZED,
        VerifyCode::NotFound,
        "unauthorized",
        format!("a valid API key is required ({code})"),
    )
    .with_challenge(challenge)
}

#[cfg(test)]
mod tests {
    use http::{Request, header};
    use http_body_util::Empty;

    use super::*;
    use crate::layer::{VerifyLayer, tests::OneKey};

    fn head(authorization: Option<&str>) -> Parts {
        let mut request = Request::builder().uri("/mcp");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(()).expect("request").into_parts().0
    }

    async fn judge(
        scope: TenantScope,
        authorization: Option<&str>,
    ) -> Result<(), (u16, &'static str)> {
        let layer = VerifyLayer::builder(OneKey, scope.clone()).build();
        match authenticate(layer.shared(), &scope, &head(authorization)).await {
            Ok(identity) => {
                assert_eq!(identity.key.key_id, "k1");
                Ok(())
            }
            Err(unverified) => {
                let response = unverified.refused.into_response::<Empty<bytes::Bytes>>();
                assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
                Err((response.status().as_u16(), unverified.outcome))
            }
        }
    }

    #[tokio::test]
    async fn a_good_key_of_this_tenant_is_the_identity() {
        assert_eq!(
            judge(TenantScope::only("acme"), Some("Bearer good")).await,
            Ok(())
        );
        assert_eq!(judge(TenantScope::Any, Some("bearer good")).await, Ok(()));
    }

    #[tokio::test]
    async fn anything_else_is_401_counted_by_why() {
        let acme = || TenantScope::only("acme");
        assert_eq!(judge(acme(), None).await, Err((401, "missing_key")));
        assert_eq!(
            judge(acme(), Some("Basic good")).await,
            Err((401, "missing_key"))
        );
        assert_eq!(
            judge(acme(), Some("Bearer bad")).await,
            Err((401, "not_found"))
        );
        assert_eq!(
            judge(TenantScope::only("other"), Some("Bearer good")).await,
            Err((401, OTHER_TENANT))
        );
    }
}
