//! `POST /api/v1/verify`: checks a key for the caller's tenant. The remote
//! backend of `keysmith-verify` calls this.

use crate::domain::UnixTime;
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};

use super::{auth::VerifyCaller, extract::ApiJson};
use crate::{error::AppResult, state::AppState};
use keysmith_verify::{
    VerifiedKey, VerifyCode,
    limit::{Quota, RateLimit, Remaining},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The presented key. Never logged, never stored.
    pub key: String,
    /// The MCP tool about to be called, checked against the key's allowlist.
    pub tool: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    /// One of `valid, malformed, not_found, expired, revoked, disabled, tool_not_allowed`
    /// (`resource_not_allowed`, `prompt_not_allowed`, `rate_limited`,
    /// `quota_exhausted`, `limits_unavailable`,
    /// `session_not_found`, `sessions_unavailable`, `bad_request`,
    /// `too_large`, `header_mismatch`, `origin_not_allowed` are the layer's
    /// audit reasons, never answered here).
    #[schema(value_type = String)]
    pub code: VerifyCode,
    pub key_id: Option<String>,
    pub service_user_id: Option<String>,
    pub service_user: Option<String>,
    /// Tenant slug.
    pub tenant: Option<String>,
    /// When the key stops working (its expiry, or its rotation cutoff).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// `null`: every tool; `[]`: none (least privilege: the key names
    /// another kind's list only). As on the key.
    pub allowed_tools: Option<Vec<String>>,
    /// `null`: every resource; `[]`: none.
    pub allowed_resources: Option<Vec<String>>,
    /// `null`: every prompt; `[]`: none.
    pub allowed_prompts: Option<Vec<String>>,
    /// The key's rate limit, enforced by the layer (`null`: none).
    #[schema(value_type = Option<Object>)]
    pub rate_limit: Option<RateLimit>,
    /// The key's quota, enforced by the layer (`null`: none).
    #[schema(value_type = Option<Object>)]
    pub quota: Option<Quota>,
    /// What is left, counting nothing: `{"per_minute", "tool_per_minute",
    /// "quota"}` (each `null` where the key has no such limit). `null` as a
    /// whole when the server has no shared limiter (`KEYSMITH_REDIS_URL`
    /// unset: in-memory limits are counted per layer instance, invisible
    /// here), when Redis cannot be asked, or when the key is refused.
    #[schema(value_type = Option<Object>)]
    pub remaining: Option<Remaining>,
    /// Set when `key` is an OAuth access token (the key fields are then its
    /// parent key's, `allowed_tools` narrowed to its scopes, `expires_at`
    /// the token's end): the resource it is bound to, which a layer must
    /// be, and its scopes.
    pub token: Option<VerifiedToken>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifiedToken {
    pub token_id: String,
    /// The one resource (RFC 8707 audience) the token is good for.
    pub resource: String,
    /// Space-separated scopes (`tools:<pattern>`, `resources:…`, `prompts:…`).
    pub scope: String,
    /// The authorization-code grant it was issued under (absent for client
    /// credentials): a layer audits its calls under it.
    pub grant_id: Option<String>,
    /// The OAuth client it was issued to (for client credentials, the key's id).
    pub client_id: Option<String>,
}

impl VerifyResponse {
    fn describe(code: VerifyCode, key: Option<&VerifiedKey>) -> Self {
        Self {
            valid: code == VerifyCode::Valid,
            code,
            key_id: key.map(|k| k.key_id.clone()),
            service_user_id: key.map(|k| k.service_user_id.clone()),
            service_user: key.map(|k| k.service_user_name.clone()),
            tenant: key.map(|k| k.tenant_slug.clone()),
            expires_at: key.map(|k| UnixTime::from(k.valid_until).rfc3339()),
            scopes: key.map(|k| k.scopes.clone()),
            allowed_tools: key.and_then(|k| k.allowed.tools().to_strings()),
            allowed_resources: key.and_then(|k| k.allowed.resources().to_strings()),
            allowed_prompts: key.and_then(|k| k.allowed.prompts().to_strings()),
            rate_limit: key.and_then(|k| k.limits.rate_limit.clone()),
            quota: key.and_then(|k| k.limits.quota),
            remaining: None,
            token: key.and_then(|k| k.token.as_ref()).map(|t| VerifiedToken {
                token_id: t.token_id.clone(),
                resource: t.resource.clone(),
                scope: t.scope.clone(),
                grant_id: t.grant_id.clone(),
                client_id: t.client_id.clone(),
            }),
        }
    }
}

/// The key's remaining budget from the shared limiter, if there is one; a
/// limiter that cannot be asked costs the answer its `remaining`, not the verdict.
async fn remaining(state: &AppState, key: &VerifiedKey, tool: Option<&str>) -> Option<Remaining> {
    let limiter = state.shared_limiter.as_ref()?;
    match limiter
        .peek(key, tool.unwrap_or_default(), state.now())
        .await
    {
        Ok(remaining) => remaining,
        Err(err) => {
            tracing::warn!(error = %err, key_id = %key.key_id, "remaining budget unknown");
            None
        }
    }
}

#[utoipa::path(post, operation_id = "keys_verify", path = "/api/v1/verify", tag = "verify",
    request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse, description = "the verdict; refusals are 200 with valid=false")),
    security(("management_key" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    caller: VerifyCaller,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> AppResult<Json<VerifyResponse>> {
    let verdict = state
        .verifier
        .verify(
            body.key.trim(),
            Some(&caller.0.tenant_id),
            body.tool.as_deref(),
        )
        .await?;
    let response = match &verdict {
        Ok(key) => VerifyResponse {
            remaining: remaining(&state, key, body.tool.as_deref()).await,
            ..VerifyResponse::describe(VerifyCode::Valid, Some(key))
        },
        Err(refusal) => VerifyResponse::describe(refusal.code, refusal.known.as_deref()),
    };
    state.metrics.count_verification(response.code);
    Ok(Json(response))
}
