//! `/api/v1/tenants/{tenant}/keys/{id}/notifications`: what was emailed about a key.

use crate::domain::{KeyId, UnixTime};
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
    pub items: Vec<Notification>,
}

/// One email about a key: the API's shape of the domain's `NotificationRecord`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = NotificationRecord)]
pub struct Notification {
    pub kind: String,
    pub threshold_days: Option<i64>,
    pub recipient: String,
    /// `pending`, `sent`, `failed` (gave up after retries) or `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: UnixTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<UnixTime>,
}

impl From<NotificationRecord> for Notification {
    fn from(record: NotificationRecord) -> Self {
        Self {
            kind: record.kind,
            threshold_days: record.threshold_days,
            recipient: record.recipient,
            status: record.status,
            attempts: record.attempts,
            last_error: record.last_error,
            created_at: record.created_at,
            sent_at: record.sent_at,
        }
    }
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
        items: outbox::list_for_key(state.pool(), &tenant.id, &id)
            .await?
            .into_iter()
            .map(Notification::from)
            .collect(),
    }))
}
