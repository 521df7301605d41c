//! `/api/v1/tenants/{tenant}`: the tenant's key policy (and its OAuth
//! lifetimes and registration switch).

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiJson};
use crate::{
    domain::tenancy::tenants::{self, PolicyChange, Tenant},
    error::{AppError, AppResult},
    state::AppState,
};
use keysmith_verify::{
    KeyPrefix,
    limit::{Quota, RateLimit},
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantPolicy {
    pub slug: String,
    pub name: String,
    /// Prefix of keys created from now on.
    pub key_prefix: String,
    /// Lifetime of a key created without an expiry.
    pub default_expiry_days: i64,
    /// Longest lifetime a key may be given, at creation or rotation.
    pub max_expiry_days: i64,
    /// How long a rotated key keeps working (capped by its own expiry).
    pub rotation_overlap_days: i64,
    /// The rate limit a new key gets when it sets none (`null`: none).
    #[schema(value_type = Option<Object>)]
    pub default_rate_limit: Option<RateLimit>,
    /// The quota a new key gets when it sets none (`null`: none).
    #[schema(value_type = Option<Object>)]
    pub default_quota: Option<Quota>,
    /// How long an OAuth access token lives, in minutes (5 to 1440; default 10).
    pub oauth_access_token_minutes: i64,
    /// An OAuth refresh token unused this many days expires (default 30).
    pub oauth_refresh_idle_days: i64,
    /// No refresh token of a grant lives longer than this many days after
    /// its approval (default 90); the person approves again after it.
    pub oauth_refresh_absolute_days: i64,
    /// `true` (the default): any client may register itself at
    /// `{issuer}/register` (RFC 7591), still needing a person's approval;
    /// `false`: only pre-registered and metadata-document clients.
    pub oauth_registration_open: bool,
    /// `true` (the default): clients identified by a client ID metadata
    /// document (an https `client_id`) may ask for access; `false`: only
    /// stored clients.
    pub oauth_metadata_documents: bool,
}

impl From<Tenant> for TenantPolicy {
    fn from(t: Tenant) -> Self {
        let limits = t.default_limits();
        let oauth_registration_open = t.registration_open();
        let oauth_metadata_documents = t.accepts_metadata_documents();
        Self {
            slug: t.slug,
            name: t.name,
            key_prefix: t.key_prefix,
            default_expiry_days: t.default_expiry_days,
            max_expiry_days: t.max_expiry_days,
            rotation_overlap_days: t.rotation_overlap_days,
            default_rate_limit: limits.rate_limit,
            default_quota: limits.quota,
            oauth_access_token_minutes: t.oauth_access_token_minutes,
            oauth_refresh_idle_days: t.oauth_refresh_idle_days,
            oauth_refresh_absolute_days: t.oauth_refresh_absolute_days,
            oauth_registration_open,
            oauth_metadata_documents,
        }
    }
}

/// A partial change; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    pub default_expiry_days: Option<i64>,
    /// At most 3650.
    pub max_expiry_days: Option<i64>,
    /// 1 to 30.
    pub rotation_overlap_days: Option<i64>,
    /// 2-16 lower-case letters and digits, starting with a letter.
    pub key_prefix: Option<String>,
    /// As a key's `rate_limit`, for new keys that set none; `null` lifts it.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<Object>)]
    pub default_rate_limit: Option<Option<RateLimit>>,
    /// As a key's `quota`, for new keys that set none; `null` lifts it.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<Object>)]
    pub default_quota: Option<Option<Quota>>,
    /// 5 to 1440.
    pub oauth_access_token_minutes: Option<i64>,
    /// 1 to `oauth_refresh_absolute_days`.
    pub oauth_refresh_idle_days: Option<i64>,
    /// 1 to 365.
    pub oauth_refresh_absolute_days: Option<i64>,
    /// Whether clients may register themselves (dynamic registration).
    pub oauth_registration_open: Option<bool>,
    /// Whether clients identified by a client ID metadata document are accepted.
    pub oauth_metadata_documents: Option<bool>,
}

#[utoipa::path(get, operation_id = "tenants_get", path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = TenantPolicy)),
    security(("management_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
) -> AppResult<Json<TenantPolicy>> {
    Ok(Json(caller.tenant(&state, &tenant).await?.into()))
}

#[utoipa::path(patch, operation_id = "tenants_update", path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = UpdatePolicy,
    responses((status = 200, body = TenantPolicy), (status = 422, description = "out of bounds")),
    security(("management_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<UpdatePolicy>,
) -> AppResult<Json<TenantPolicy>> {
    let change = PolicyChange {
        default_expiry_days: body.default_expiry_days,
        max_expiry_days: body.max_expiry_days,
        rotation_overlap_days: body.rotation_overlap_days,
        key_prefix: body
            .key_prefix
            .as_deref()
            .map(KeyPrefix::parse)
            .transpose()
            .map_err(|e| AppError::validation(format!("key_prefix: {e}")))?,
        default_rate_limit: body.default_rate_limit,
        default_quota: body.default_quota,
        oauth_access_token_minutes: body.oauth_access_token_minutes,
        oauth_refresh_idle_days: body.oauth_refresh_idle_days,
        oauth_refresh_absolute_days: body.oauth_refresh_absolute_days,
        oauth_registration_open: body.oauth_registration_open,
        oauth_metadata_documents: body.oauth_metadata_documents,
    };
    let tenant = caller.tenant(&state, &tenant).await?;
    let updated = tenants::update_policy(
        state.pool(),
        &tenant.id,
        change,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(Json(updated.into()))
}
