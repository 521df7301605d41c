//! JSON API authentication: a management key bound to its tenant, with the
//! `keysmith:admin` scope for the API, `keysmith:verify` for the verify
//! endpoint alone, or `keysmith:revoke-leaked` for leak reports alone.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use tokio::sync::OwnedSemaphorePermit;

use crate::{
    domain::{
        Actor, Scope, TenantId,
        tenancy::tenants::{self, Tenant},
    },
    error::{AppError, AppResult},
    state::AppState,
};
use keysmith_verify::VerifiedKey;

/// The verified management key behind an API call.
/// A management key of scope `keysmith:admin`, holding one of its tenant's
/// turns (`TenantGate`) for as long as the request runs.
#[derive(Debug, Clone)]
pub struct ManagementCaller(
    pub VerifiedKey,
    #[expect(
        dead_code,
        reason = "held, never read: the turn is given back when the request ends"
    )]
    Arc<OwnedSemaphorePermit>,
);

impl FromRequestParts<AppState> for ManagementCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let verified = with_scope(
            parts,
            state,
            &[Scope::ADMIN],
            "this key lacks the keysmith:admin scope",
        )
        .await?;
        // Taken after authentication: only a tenant's own keys use its turns.
        let turn = state
            .tenant_gate
            .enter(&verified.tenant_id)
            .await
            .ok_or(AppError::Busy(
                "too many requests of this tenant at once (KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT): retry after the others finish",
            ))?;
        Ok(Self(verified, Arc::new(turn)))
    }
}

/// A management key that may ask `POST /api/v1/verify`: scope
/// `keysmith:verify` or `keysmith:admin`.
#[derive(Debug, Clone)]
pub struct VerifyCaller(pub VerifiedKey);

impl FromRequestParts<AppState> for VerifyCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refused = "this key lacks the keysmith:verify scope";
        with_scope(parts, state, &[Scope::VERIFY, Scope::ADMIN], refused)
            .await
            .map(Self)
    }
}

/// A management key that may report leaked keys: scope `keysmith:revoke-leaked`.
#[derive(Debug, Clone)]
pub struct RevokeCaller(pub VerifiedKey);

impl FromRequestParts<AppState> for RevokeCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refused = "this key lacks the keysmith:revoke-leaked scope";
        with_scope(parts, state, &[Scope::REVOKE_LEAKED], refused)
            .await
            .map(Self)
    }
}

/// The key in `Authorization: Bearer`, verified, holding one of `scopes`
/// (else `403` saying `refused`).
async fn with_scope(
    parts: &Parts,
    state: &AppState,
    scopes: &[&str],
    refused: &'static str,
) -> Result<VerifiedKey, AppError> {
    let verified = authenticate(parts, state).await?;
    if scopes.iter().any(|scope| verified.has_scope(scope)) {
        Ok(verified)
    } else {
        Err(AppError::Forbidden(refused))
    }
}

/// The key in `Authorization: Bearer`, verified.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<VerifiedKey, AppError> {
    let presented = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key)
        .ok_or(AppError::Unauthorized(
            "send a management key as `Authorization: Bearer <key>`",
        ))?;
    let verified = state
        .verifier
        .verify(presented.trim(), None, None)
        .await?
        .map_err(|refusal| {
            tracing::info!(
                code = refusal.code.as_str(),
                key_id = refusal.key_id.as_deref(),
                "management key refused"
            );
            AppError::Unauthorized("the API key is invalid, expired or revoked")
        })?;
    // An OAuth access token is for MCP servers, never for this API (it
    // carries no `keysmith:*` scope either: this says so plainly).
    if verified.token.is_some() {
        return Err(AppError::Unauthorized(
            "an OAuth access token is not a management key",
        ));
    }
    Ok(verified)
}

impl ManagementCaller {
    /// The tenant named in the path, which must be the key's own: any other
    /// tenant is `404`, exactly as if it did not exist.
    pub async fn tenant(&self, state: &AppState, slug: &str) -> AppResult<Tenant> {
        if slug != self.0.tenant_slug {
            return Err(AppError::NotFound("tenant"));
        }
        tenants::find_by_id(state.pool(), &TenantId::new(self.0.tenant_id.as_str()))
            .await?
            .ok_or(AppError::NotFound("tenant"))
    }

    pub fn actor(&self) -> Actor {
        Actor::ManagementKey {
            key_id: self.0.key_id.clone(),
        }
    }
}
