//! `/api/v1/tenants/{tenant}/service-users`

use crate::domain::{ServiceUserId, UnixTime};
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
    domain::{
        Description, Email, Name,
        tenancy::caps::TenantCaps,
        tenancy::service_users::{self, NewServiceUser, ServiceUser, ServiceUserChange},
        values::page,
    },
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceUser {
    pub name: String,
    pub owner_email: String,
    pub description: Option<String>,
}

// The API's shape of the domain's `ServiceUser` (no doc comment: it would
// become the schema's description, and the document keeps none).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ServiceUser)]
pub struct ServiceUserInfo {
    #[schema(value_type = String)]
    pub id: ServiceUserId,
    pub name: String,
    pub owner_email: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<UnixTime>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: UnixTime,
}

impl From<ServiceUser> for ServiceUserInfo {
    fn from(user: ServiceUser) -> Self {
        Self {
            id: user.id,
            name: user.name,
            owner_email: user.owner_email,
            description: user.description,
            disabled_at: user.disabled_at,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceUserList {
    pub items: Vec<ServiceUserInfo>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListServiceUsers {
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[utoipa::path(post, operation_id = "service_users_create", path = "/api/v1/tenants/{tenant}/service-users", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = CreateServiceUser,
    responses((status = 201, body = ServiceUserInfo), (status = 409, description = "name taken"), (status = 422, description = "invalid input")),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateServiceUser>,
) -> AppResult<(StatusCode, Json<ServiceUserInfo>)> {
    let new = NewServiceUser {
        name: Name::parse("name", &body.name)?,
        owner_email: Some(Email::parse(&body.owner_email)?),
        description: body
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?
            .flatten(),
    };
    let tenant = caller.tenant(&state, &tenant).await?;
    let created = service_users::create(
        state.pool(),
        &tenant.id,
        new,
        TenantCaps::of(&state.config).service_users,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, operation_id = "service_users_list", path = "/api/v1/tenants/{tenant}/service-users", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug"), ListServiceUsers),
    responses((status = 200, body = ServiceUserList, description = "newest first"), (status = 400, description = "invalid cursor or limit")),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ListServiceUsers>,
) -> AppResult<Json<ServiceUserList>> {
    let limit = page::limit(query.limit)?;
    let tenant = caller.tenant(&state, &tenant).await?;
    let page =
        service_users::list(state.pool(), &tenant.id, query.cursor.as_deref(), limit).await?;
    Ok(Json(ServiceUserList {
        items: page.items.into_iter().map(ServiceUserInfo::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A partial edit: absent fields stay as they are; `"description": null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceUser {
    pub name: Option<String>,
    pub owner_email: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

#[utoipa::path(get, operation_id = "service_users_get", path = "/api/v1/tenants/{tenant}/service-users/{id}", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path)),
    responses((status = 200, body = ServiceUserInfo), (status = 404, description = "no such service user in this tenant")),
    security(("management_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, ServiceUserId)>,
) -> AppResult<Json<ServiceUserInfo>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let user = service_users::get(state.pool(), &tenant.id, &id).await?;
    Ok(Json(user.into()))
}

#[utoipa::path(patch, operation_id = "service_users_update", path = "/api/v1/tenants/{tenant}/service-users/{id}", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path)),
    request_body = UpdateServiceUser,
    responses((status = 200, body = ServiceUserInfo), (status = 404), (status = 409, description = "name taken"), (status = 422, description = "invalid input")),
    security(("management_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, ServiceUserId)>,
    ApiJson(body): ApiJson<UpdateServiceUser>,
) -> AppResult<Json<ServiceUserInfo>> {
    let change = ServiceUserChange {
        name: body
            .name
            .as_deref()
            .map(|n| Name::parse("name", n))
            .transpose()?,
        owner_email: body.owner_email.as_deref().map(Email::parse).transpose()?,
        description: body
            .description
            .map(|d| {
                d.as_deref()
                    .map(Description::parse)
                    .transpose()
                    .map(Option::flatten)
            })
            .transpose()?,
    };
    let tenant = caller.tenant(&state, &tenant).await?;
    let updated = service_users::update(
        state.pool(),
        &tenant.id,
        &id,
        change,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(post, operation_id = "service_users_disable", path = "/api/v1/tenants/{tenant}/service-users/{id}/disable", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path)),
    responses((status = 200, body = ServiceUserInfo, description = "disabled: every key of it is refused at once")),
    security(("management_key" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, ServiceUserId)>,
) -> AppResult<Json<ServiceUserInfo>> {
    set_disabled(state, caller, tenant, id, true).await
}

#[utoipa::path(post, operation_id = "service_users_enable", path = "/api/v1/tenants/{tenant}/service-users/{id}/enable", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path)),
    responses((status = 200, body = ServiceUserInfo)),
    security(("management_key" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, ServiceUserId)>,
) -> AppResult<Json<ServiceUserInfo>> {
    set_disabled(state, caller, tenant, id, false).await
}

async fn set_disabled(
    state: AppState,
    caller: ManagementCaller,
    tenant: String,
    id: ServiceUserId,
    disabled: bool,
) -> AppResult<Json<ServiceUserInfo>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let changed = service_users::set_disabled(
        state.pool(),
        &tenant.id,
        &id,
        disabled,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(Json(changed.into()))
}
