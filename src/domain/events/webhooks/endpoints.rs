//! Endpoints as read back: listed and fetched, never with their secret.

use serde::Serialize;
use sqlx::AnyPool;

use crate::domain::{
    TenantId, UnixTime, WebhookEndpointId,
    error::{DomainError, DomainResult},
};

/// An endpoint as listed: never the secret.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub id: WebhookEndpointId,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: UnixTime,
    pub created_by: String,
    /// Failed attempts in a row (0 once one succeeds).
    pub consecutive_failures: i64,
    /// Set when the endpoint was disabled after too many failures; nothing
    /// is sent until it is enabled again.
    pub disabled_at: Option<UnixTime>,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: WebhookEndpointId,
    url: String,
    events: String,
    created_at: UnixTime,
    created_by: String,
    consecutive_failures: i64,
    disabled_at: Option<UnixTime>,
}

impl From<EndpointRow> for Endpoint {
    fn from(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            url: row.url,
            events: serde_json::from_str(&row.events).unwrap_or_default(),
            created_at: row.created_at,
            created_by: row.created_by,
            consecutive_failures: row.consecutive_failures,
            disabled_at: row.disabled_at,
        }
    }
}

const SELECT: &str = "SELECT id, url, events, created_at, created_by, consecutive_failures, disabled_at \
                      FROM webhook_endpoints";

pub async fn list(pool: &AnyPool, tenant_id: &TenantId) -> DomainResult<Vec<Endpoint>> {
    let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1 ORDER BY created_at, id"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Endpoint::from).collect())
}

pub async fn get(
    pool: &AnyPool,
    tenant_id: &TenantId,
    id: &WebhookEndpointId,
) -> DomainResult<Endpoint> {
    let row: Option<EndpointRow> =
        sqlx::query_as(&format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(Endpoint::from)
        .ok_or(DomainError::NotFound("webhook"))
}
