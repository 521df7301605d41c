//! `/api/v1/tenants/{tenant}/invitations`: a tenant offers a person a role;
//! the person accepts on their account page. The answer never says whether
//! an email has an account, and nothing changes for the person until they
//! accept.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiJson};
use crate::{
    domain::{Email, people::accounts::Role, people::invitations},
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationBody {
    pub email: String,
    /// `viewer`, `admin` or `owner`.
    pub role: String,
    pub created_at: String,
    /// The invitation lapses unanswered at this time.
    pub expires_at: String,
}

impl From<invitations::Invitation> for InvitationBody {
    fn from(invitation: invitations::Invitation) -> Self {
        Self {
            email: invitation.email,
            role: invitation.role,
            created_at: invitation.created_at.rfc3339(),
            expires_at: invitation.expires_at.rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationList {
    pub items: Vec<InvitationBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub email: String,
    /// `viewer`, `admin` or `owner`.
    pub role: String,
}

#[utoipa::path(post, operation_id = "invitations_create", path = "/api/v1/tenants/{tenant}/invitations", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = NewInvitation,
    responses((status = 202, body = InvitationBody, description = "invited, whether or not the email has an account; it takes effect when the person accepts"),
        (status = 409, description = "the person already has a role here: change it with PUT /admins/{email}"),
        (status = 422, description = "bad email or role, or too many pending invitations")),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<NewInvitation>,
) -> AppResult<(StatusCode, Json<InvitationBody>)> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let email = Email::parse(&body.email)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| AppError::validation("role must be viewer, admin or owner"))?;
    let invitation = invitations::invite(
        state.pool(),
        &tenant.id,
        &email,
        role,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(invitation.into())))
}

#[utoipa::path(get, operation_id = "invitations_list", path = "/api/v1/tenants/{tenant}/invitations", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = InvitationList)),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
) -> AppResult<Json<InvitationList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let items = invitations::list(state.pool(), &tenant.id, state.now())
        .await?
        .into_iter()
        .map(InvitationBody::from)
        .collect();
    Ok(Json(InvitationList { items }))
}

#[utoipa::path(delete, operation_id = "invitations_withdraw", path = "/api/v1/tenants/{tenant}/invitations/{email}", tag = "admins",
    params(("tenant" = String, Path, description = "tenant slug"), ("email" = String, Path, description = "the invited email")),
    responses((status = 204, description = "withdrawn"), (status = 404, description = "no pending invitation")),
    security(("management_key" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, email)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let email = Email::parse(&email)?;
    invitations::withdraw(
        state.pool(),
        &tenant.id,
        &email,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
