//! `/api/v1/tenants/{tenant}/admins`: who administers the tenant, and
//! changing or removing the role of those who have one (a person joins by
//! accepting an invitation: see `invitations`; accounts themselves are
//! instance-wide, managed by superadmins). Lowering or removing a role ends
//! the account's sessions (not a superadmin's); both are audited.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{
    auth::ManagementCaller,
    extract::{ApiJson, ApiQuery},
};
use crate::{
    domain::{Email, people::accounts::Role, people::lifecycle, values::page},
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantAdmin {
    pub email: String,
    /// `viewer`, `admin` or `owner`.
    pub role: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantAdminList {
    pub items: Vec<TenantAdmin>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListAdmins {
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `viewer`, `admin` or `owner`.
    pub role: String,
}

#[utoipa::path(get, operation_id = "admins_list", path = "/api/v1/tenants/{tenant}/admins", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug"), ListAdmins),
    responses((status = 200, body = TenantAdminList, description = "newest role first"), (status = 400, description = "invalid cursor or limit")),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ListAdmins>,
) -> AppResult<Json<TenantAdminList>> {
    let limit = page::limit(query.limit)?;
    let tenant = caller.tenant(&state, &tenant).await?;
    let roles =
        lifecycle::tenant_roles(state.pool(), &tenant.id, query.cursor.as_deref(), limit).await?;
    Ok(Json(TenantAdminList {
        items: roles
            .items
            .into_iter()
            .map(|r| TenantAdmin {
                email: r.email,
                role: r.role,
            })
            .collect(),
        next_cursor: roles.next_cursor,
    }))
}

#[utoipa::path(put, operation_id = "admins_set_role", path = "/api/v1/tenants/{tenant}/admins/{email}", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug"), ("email" = String, Path, description = "the admin's email")),
    request_body = SetRole,
    responses((status = 200, body = TenantAdmin), (status = 404, description = "no role in this tenant: invite the person instead"), (status = 422, description = "unknown role")),
    security(("management_key" = [])))]
pub async fn set_role(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, email)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetRole>,
) -> AppResult<Json<TenantAdmin>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let email = Email::parse(&email)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| AppError::validation("role must be viewer, admin or owner"))?;
    lifecycle::change_role(
        state.pool(),
        &tenant.id,
        email.as_str(),
        role,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(Json(TenantAdmin {
        email: email.as_str().to_owned(),
        role: role.as_str().to_owned(),
    }))
}

#[utoipa::path(delete, operation_id = "admins_remove", path = "/api/v1/tenants/{tenant}/admins/{email}", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug"), ("email" = String, Path, description = "the admin's email")),
    responses((status = 204, description = "role removed; the account's sessions ended"), (status = 404, description = "no role in this tenant")),
    security(("management_key" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, email)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let tenant = caller.tenant(&state, &tenant).await?;
    lifecycle::remove_role(
        state.pool(),
        &tenant.id,
        &email,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
