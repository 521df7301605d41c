//! The events written for endpoints: one delivery per subscribed endpoint,
//! in the transaction of the event's cause.

use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::deliveries;
use crate::domain::{TenantId, WebhookEndpointId, crypto::random, error::DomainResult};

/// The JSON body of an event: no secret, ever.
pub(super) fn body(
    event_id: &str,
    event_type: &str,
    tenant_slug: &str,
    data: &serde_json::Value,
    now: OffsetDateTime,
) -> DomainResult<String> {
    let created_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(anyhow::Error::from)?;
    Ok(serde_json::json!({
        "id": event_id,
        "type": event_type,
        "created_at": created_at,
        "tenant": tenant_slug,
        "data": data,
    })
    .to_string())
}

/// Writes one delivery per endpoint of the tenant subscribed to `event_type`,
/// inside the caller's transaction: the event exists if and only if its cause does.
pub async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    event_type: &str,
    data: serde_json::Value,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let endpoints: Vec<(WebhookEndpointId, String)> = sqlx::query_as(
        "SELECT id, events FROM webhook_endpoints WHERE tenant_id = $1 AND disabled_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let subscribed: Vec<WebhookEndpointId> = endpoints
        .into_iter()
        .filter(|(_, events)| {
            serde_json::from_str::<Vec<String>>(events)
                .is_ok_and(|events| events.iter().any(|e| e == event_type))
        })
        .map(|(id, _)| id)
        .collect();
    if subscribed.is_empty() {
        return Ok(());
    }
    let slug: (String,) = sqlx::query_as("SELECT slug FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    for endpoint_id in subscribed {
        let event_id = format!("evt_{}", random::base62(20));
        let payload = body(&event_id, event_type, &slug.0, &data, now)?;
        deliveries::insert(
            tx,
            tenant_id,
            &endpoint_id,
            &event_id,
            event_type,
            &payload,
            now,
        )
        .await?;
    }
    Ok(())
}
