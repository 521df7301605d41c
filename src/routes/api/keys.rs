//! `/api/v1/tenants/{tenant}/keys…`: create, list, read, change limits, rotate, revoke.

use crate::domain::{KeyId, ServiceUserId};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use keysmith_verify::limit::{Quota, RateLimit};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{
    auth::ManagementCaller,
    extract::{ApiJson, ApiQuery, optional_json},
    model::{CreatedKey, KeyInfo, KeyList, RotationResponse},
};
use crate::{
    domain::{
        Name, Scope,
        caps::TenantCaps,
        keys::{self, ExpiryRequest, KeyFilter, KeyState, NewKey},
        page,
    },
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub service_user_id: String,
    pub name: String,
    /// RFC 3339; or use `expires_in_days`; neither: the tenant default (90 days).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    pub expires_in_days: Option<i64>,
    /// Tool names or `prefix*` (`["*"]`: every tool). Omit all three
    /// allowlists for a key that may use everything; naming any limits the
    /// key to what the lists name (an omitted one is then none of its kind).
    /// 1 to 100 entries.
    pub allowed_tools: Option<Vec<String>>,
    /// Resource URIs or `prefix*` (`["*"]`: every resource). A prefix admits
    /// only plain URIs under it: after it, letters, digits and
    /// `-._~/!$&'()+,=` (`%XX` only of those or space), no `.` or `..`
    /// segment, no `//`. 1 to 100 entries of at most 2048 bytes.
    pub allowed_resources: Option<Vec<String>>,
    /// Prompt names or `prefix*` (`["*"]`: every prompt), named as tools are.
    pub allowed_prompts: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    /// `{"per_minute": 600, "tools": [{"tool": "search*", "per_minute": 60}]}`:
    /// tool calls a minute for the key, tighter for matching tools (at most 20).
    #[schema(value_type = Option<Object>)]
    pub rate_limit: Option<RateLimit>,
    /// `{"calls": 10000, "per": "day"}` (or `"month"`, UTC calendar windows).
    #[schema(value_type = Option<Object>)]
    pub quota: Option<Quota>,
}

/// A change of a key's limits: an absent field stays as it is, `null` lifts it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyLimits {
    /// As on create; `null`: no rate limit.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<Object>)]
    pub rate_limit: Option<Option<RateLimit>>,
    /// As on create; `null`: no quota.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<Object>)]
    pub quota: Option<Option<Quota>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListKeys {
    /// One of `active, rotating, expired, revoked`.
    #[param(value_type = Option<String>)]
    pub status: Option<KeyState>,
    pub service_user_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(post, operation_id = "keys_create", path = "/api/v1/tenants/{tenant}/keys", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = CreateKey,
    responses((status = 201, body = CreatedKey, description = "the key, shown this once"), (status = 404, description = "unknown service user"), (status = 422, description = "invalid input")),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateKey>,
) -> AppResult<(
    StatusCode,
    [(http::HeaderName, &'static str); 1],
    Json<CreatedKey>,
)> {
    let new = NewKey {
        service_user_id: ServiceUserId::new(body.service_user_id),
        name: Name::parse("name", &body.name)?,
        expiry: ExpiryRequest::from_parts(body.expires_at, body.expires_in_days)?
            .unwrap_or(ExpiryRequest::TenantDefault),
        allowed: keys::capabilities(
            body.allowed_tools.as_deref(),
            body.allowed_resources.as_deref(),
            body.allowed_prompts.as_deref(),
        )?,
        scopes: body
            .scopes
            .unwrap_or_default()
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<AppResult<_>>()?,
        limits: keys::limits(body.rate_limit, body.quota)?,
    };
    let tenant = caller.tenant(&state, &tenant).await?;
    let now = state.now();
    let issued = keys::create(
        state.pool(),
        &state.peppers,
        &tenant,
        new,
        TenantCaps::of(&state.config).keys,
        &caller.actor(),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        super::NO_STORE,
        Json(CreatedKey::new(&issued, &tenant.slug, now)),
    ))
}

#[utoipa::path(get, operation_id = "keys_list", path = "/api/v1/tenants/{tenant}/keys", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ListKeys),
    responses((status = 200, body = KeyList)),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ListKeys>,
) -> AppResult<Json<KeyList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let now = state.now();
    let filter = KeyFilter {
        status: query.status,
        service_user_id: query.service_user_id.map(ServiceUserId::new),
    };
    let page = keys::list(
        state.pool(),
        &tenant.id,
        &filter,
        query.cursor.as_deref(),
        page::limit(query.limit)?,
        now,
    )
    .await?;
    Ok(Json(KeyList {
        items: page
            .items
            .iter()
            .map(|row| KeyInfo::new(row, &tenant.slug, now))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, operation_id = "keys_get", path = "/api/v1/tenants/{tenant}/keys/{id}", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id")),
    responses((status = 200, body = KeyInfo), (status = 404, description = "no such key in this tenant")),
    security(("management_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
) -> AppResult<Json<KeyInfo>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let row = keys::get(state.pool(), &tenant.id, &id).await?;
    Ok(Json(KeyInfo::new(&row, &tenant.slug, state.now())))
}

#[utoipa::path(patch, operation_id = "keys_update_limits", path = "/api/v1/tenants/{tenant}/keys/{id}", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id")),
    request_body = UpdateKeyLimits,
    responses((status = 200, body = KeyInfo), (status = 404, description = "no such key in this tenant"), (status = 409, description = "the key is revoked or expired, or changed meanwhile"), (status = 422, description = "invalid limits")),
    security(("management_key" = [])))]
pub async fn update_limits(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
    ApiJson(body): ApiJson<UpdateKeyLimits>,
) -> AppResult<Json<KeyInfo>> {
    if body.rate_limit.is_none() && body.quota.is_none() {
        return Err(AppError::validation(
            "give rate_limit or quota (null lifts it)",
        ));
    }
    let tenant = caller.tenant(&state, &tenant).await?;
    let now = state.now();
    let change = keys::LimitsChange {
        rate_limit: body.rate_limit,
        quota: body.quota,
    };
    let row = keys::set_limits(state.pool(), &tenant, &id, change, &caller.actor(), now).await?;
    Ok(Json(KeyInfo::new(&row, &tenant.slug, now)))
}

#[utoipa::path(post, operation_id = "keys_rotate", path = "/api/v1/tenants/{tenant}/keys/{id}/rotate", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id")),
    request_body(content = Option<RotateKey>, description = "optional: the new key's expiry"),
    responses((status = 201, body = RotationResponse), (status = 409, description = "the key is not active")),
    security(("management_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
    body: Bytes,
) -> AppResult<(
    StatusCode,
    [(http::HeaderName, &'static str); 1],
    Json<RotationResponse>,
)> {
    let body: RotateKey = optional_json(&body)?;
    let expiry = ExpiryRequest::from_parts(body.expires_at, body.expires_in_days)?;
    let tenant = caller.tenant(&state, &tenant).await?;
    let now = state.now();
    let rotation = keys::rotate(
        state.pool(),
        &state.peppers,
        &tenant,
        &id,
        expiry,
        TenantCaps::of(&state.config).keys,
        &caller.actor(),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        super::NO_STORE,
        Json(RotationResponse::new(&rotation, &tenant.slug, now)),
    ))
}

#[utoipa::path(post, operation_id = "keys_revoke", path = "/api/v1/tenants/{tenant}/keys/{id}/revoke", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id")),
    request_body(content = Option<RevokeKey>),
    responses((status = 200, body = KeyInfo), (status = 409, description = "already revoked or expired")),
    security(("management_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
    body: Bytes,
) -> AppResult<Json<KeyInfo>> {
    let body: RevokeKey = optional_json(&body)?;
    let reason = match body.reason.as_deref() {
        None => "revoked".to_owned(),
        Some(raw) => Name::parse("reason", raw)?.as_str().to_owned(),
    };
    let tenant = caller.tenant(&state, &tenant).await?;
    let now = state.now();
    let row = keys::revoke(state.pool(), &tenant, &id, &reason, &caller.actor(), now).await?;
    Ok(Json(KeyInfo::new(&row, &tenant.slug, now)))
}
