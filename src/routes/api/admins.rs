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

use super::{auth::ManagementCaller, extract::ApiJson};
use crate::{
    domain::{Email, accounts, users::Role},
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
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `viewer`, `admin` or `owner`.
    pub role: String,
}

#[utoipa::path(get, operation_id = "admins_list", path = "/api/v1/tenants/{tenant}/admins", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = TenantAdminList)),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
) -> AppResult<Json<TenantAdminList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let items = accounts::tenant_roles(state.pool(), &tenant.id)
        .await?
        .into_iter()
        .map(|(email, role)| TenantAdmin { email, role })
        .collect();
    Ok(Json(TenantAdminList { items }))
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
    accounts::change_role(
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
    accounts::remove_role(
        state.pool(),
        &tenant.id,
        &email,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
