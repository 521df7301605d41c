//! `/api/v1/tenants/{tenant}/keys/{id}/audit` and `/usage`.

use crate::domain::{KeyId, ServiceUserId, UnixTime};
use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiQuery};
use crate::{
    domain::{
        audit::usage::{self, ToolUsage},
        audit::{self, AuditEvent},
        keys,
        values::page,
    },
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `all` (default), `admin` (people's actions on the key), `calls`
    /// (requests made with it) or `refusals` (those refused).
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

// The API's shape of the domain's `AuditEvent` (no doc comment: it would
// become the schema's description, and the document keeps none).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventInfo {
    #[schema(value_type = Option<String>)]
    pub key_id: Option<KeyId>,
    #[schema(value_type = Option<String>)]
    pub service_user_id: Option<ServiceUserId>,
    pub actor: String,
    pub action: String,
    pub tool: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub at: UnixTime,
    /// Tool calls: the HTTP status answered (upstream or refusal).
    pub status: Option<i64>,
    /// Tool calls: microseconds until the answer's headers.
    pub duration_us: Option<i64>,
    /// Tool calls made with an OAuth access token: the grant it was issued
    /// under (authorization code; none for client credentials).
    pub grant_id: Option<String>,
    /// Tool calls made with an OAuth access token: the client it was
    /// issued to (for client credentials, the key's id).
    pub client_id: Option<String>,
}

impl From<AuditEvent> for AuditEventInfo {
    fn from(event: AuditEvent) -> Self {
        Self {
            key_id: event.key_id,
            service_user_id: event.service_user_id,
            actor: event.actor,
            action: event.action,
            tool: event.tool,
            outcome: event.outcome,
            reason: event.reason,
            request_id: event.request_id,
            at: event.at,
            status: event.status,
            duration_us: event.duration_us,
            grant_id: event.grant_id,
            client_id: event.client_id,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEventInfo>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "keys_audit", path = "/api/v1/tenants/{tenant}/keys/{id}/audit", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id"), AuditQuery),
    responses((status = 200, body = AuditList)),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> AppResult<Json<AuditList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    keys::get(state.pool(), &tenant.id, &id).await?;
    let page = audit::list_for_key(
        state.pool(),
        &tenant.id,
        &id,
        audit::AuditKind::parse(query.kind.as_deref())?,
        query.cursor.as_deref(),
        page::limit(query.limit)?,
    )
    .await?;
    Ok(Json(AuditList {
        items: page.items.into_iter().map(AuditEventInfo::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Window in UTC days ending with today (today counts as one), default 30, at most 365.
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    pub tools: Vec<ToolUsageInfo>,
}

/// One tool's calls in the window: the API's shape of the domain's `ToolUsage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ToolUsage)]
pub struct ToolUsageInfo {
    pub tool: String,
    pub calls: i64,
    pub denied: i64,
    /// Calls the upstream answered with a 5xx, or not at all.
    pub errors: i64,
    /// Median duration in µs (within 25 %: read from a log-bucket
    /// histogram); absent when no call recorded one.
    pub p50_us: Option<i64>,
    pub p99_us: Option<i64>,
}

impl From<ToolUsage> for ToolUsageInfo {
    fn from(usage: ToolUsage) -> Self {
        let ToolUsage {
            tool,
            calls,
            denied,
            errors,
            p50_us,
            p99_us,
        } = usage;
        Self {
            tool,
            calls,
            denied,
            errors,
            p50_us,
            p99_us,
        }
    }
}

#[utoipa::path(get, operation_id = "keys_usage", path = "/api/v1/tenants/{tenant}/keys/{id}/usage", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id"), UsageQuery),
    responses((status = 200, body = Usage)),
    security(("management_key" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> AppResult<Json<Usage>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let key = keys::get(state.pool(), &tenant.id, &id).await?;
    let since = usage::window_start(state.now(), query.days.unwrap_or(30).clamp(1, 365));
    Ok(Json(Usage {
        last_used_at: key.last_used_at.map(UnixTime::rfc3339),
        tools: usage::tool_usage(state.pool(), &tenant.id, &id, since)
            .await?
            .into_iter()
            .map(ToolUsageInfo::from)
            .collect(),
    }))
}
