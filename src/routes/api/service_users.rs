//! `/api/v1/tenants/{tenant}/service-users`

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiJson};
use crate::{
    domain::{
        Description, Email, Name,
        service_users::{self, NewServiceUser, ServiceUser},
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceUserList {
    pub items: Vec<ServiceUser>,
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/service-users", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = CreateServiceUser,
    responses((status = 201, body = ServiceUser), (status = 409, description = "name taken"), (status = 422, description = "invalid input")),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateServiceUser>,
) -> AppResult<(StatusCode, Json<ServiceUser>)> {
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
    let created = service_users::create(state.pool(), &tenant.id, new, state.now()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/service-users", tag = "service users",
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = ServiceUserList)),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
) -> AppResult<Json<ServiceUserList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    Ok(Json(ServiceUserList {
        items: service_users::list(state.pool(), &tenant.id).await?,
    }))
}
