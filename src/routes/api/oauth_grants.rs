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
        oauth::grants::{self, Grant},
        page::{self, Page},
    },
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantBody {
    #[serde(flatten)]
    pub grant: Grant,
    /// The approved scopes (`tools:…`, `resources:…`, `prompts:…`).
    pub scopes: Vec<String>,
}

impl From<Grant> for GrantBody {
    fn from(grant: Grant) -> Self {
        Self {
            scopes: grant.scope_list(),
            grant,
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
