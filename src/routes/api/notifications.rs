//! `/api/v1/tenants/{tenant}/keys/{id}/notifications`: what was emailed about a key.

use crate::domain::KeyId;
use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;

use super::auth::ManagementCaller;
use crate::{
    domain::events::outbox::{self, NotificationRecord},
    domain::keys,
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationRecord>,
}

#[utoipa::path(get, operation_id = "keys_notifications", path = "/api/v1/tenants/{tenant}/keys/{id}/notifications", tag = "keys",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "public key id")),
    responses((status = 200, body = NotificationList, description = "newest first: kind, recipient, delivery status and last error")),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, KeyId)>,
) -> AppResult<Json<NotificationList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    keys::get(state.pool(), &tenant.id, &id).await?;
    Ok(Json(NotificationList {
        items: outbox::list_for_key(state.pool(), &tenant.id, &id).await?,
    }))
}
