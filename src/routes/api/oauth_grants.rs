//! `/api/v1/tenants/{tenant}/oauth/grants`: the OAuth connections people
//! approved (client, service user, scopes, who approved, when, last used),
//! and ending one (its tokens stop within a key revocation's bound).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiQuery};
use crate::{
    domain::{
        KeyId, ServiceUserId, UnixTime,
        oauth::grants::{self, Grant},
        values::page::{self, Page},
    },
    error::AppResult,
    state::AppState,
};

/// A grant as listed (API and admin page).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Grant)]
pub struct GrantInfo {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    #[schema(value_type = String)]
    pub service_user_id: ServiceUserId,
    pub service_user_name: String,
    /// The parent key every token of the grant hangs on.
    #[schema(value_type = String)]
    pub key_id: KeyId,
    /// The MCP server (RFC 8707 resource) the grant's tokens are bound to.
    pub resource: String,
    /// Who approved it (`user:<email>`).
    pub approved_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: UnixTime,
    /// Latest token issued or refresh, or call made with one of its tokens.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<UnixTime>,
    /// No refresh token of the grant lives past this.
    #[schema(value_type = String, format = DateTime)]
    pub refresh_until: UnixTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<UnixTime>,
    pub revoked_reason: Option<String>,
}

impl From<Grant> for GrantInfo {
    fn from(grant: Grant) -> Self {
        Self {
            id: grant.id,
            client_id: grant.client_id,
            client_name: grant.client_name,
            service_user_id: grant.service_user_id,
            service_user_name: grant.service_user_name,
            key_id: grant.key_id,
            resource: grant.resource,
            approved_by: grant.approved_by,
            created_at: grant.created_at,
            last_used_at: grant.last_used_at,
            refresh_until: grant.refresh_until,
            revoked_at: grant.revoked_at,
            revoked_reason: grant.revoked_reason,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantBody {
    #[serde(flatten)]
    pub grant: GrantInfo,
    /// The approved scopes (`tools:…`, `resources:…`, `prompts:…`).
    pub scopes: Vec<String>,
}

impl From<Grant> for GrantBody {
    fn from(grant: Grant) -> Self {
        Self {
            scopes: grant.scope_list(),
            grant: grant.into(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantList {
    pub items: Vec<GrantBody>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListGrants {
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[utoipa::path(get, operation_id = "oauth_grants_list", path = "/api/v1/tenants/{tenant}/oauth/grants", tag = "oauth",
    params(("tenant" = String, Path, description = "tenant slug"), ListGrants),
    responses((status = 200, body = GrantList, description = "newest first, revoked ones included"),
        (status = 400, description = "invalid cursor or limit")),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ListGrants>,
) -> AppResult<Json<GrantList>> {
    let limit = page::limit(query.limit)?;
    let cursor = query.cursor.as_deref().map(page::time_and_id).transpose()?;
    let tenant = caller.tenant(&state, &tenant).await?;
    let rows = grants::list(state.pool(), &tenant.id, cursor, limit + 1).await?;
    let page = Page::from_overfetch(rows, limit, |g| format!("{}.{}", g.created_at.secs(), g.id));
    Ok(Json(GrantList {
        items: page.items.into_iter().map(GrantBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(delete, operation_id = "oauth_grants_revoke", path = "/api/v1/tenants/{tenant}/oauth/grants/{id}", tag = "oauth",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "the grant's id")),
    responses((status = 204, description = "revoked: the grant, its parent key and every token on it"),
        (status = 404, description = "no such grant in this tenant"),
        (status = 409, description = "already revoked")),
    security(("management_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let tenant = caller.tenant(&state, &tenant).await?;
    grants::revoke(state.pool(), &tenant.id, &id, &caller.actor(), state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
