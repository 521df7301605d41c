//! Webhook deliveries: the email outbox's lease-and-backoff discipline ([`queue`]), on a
//! sibling table (a delivery has a status code and an endpoint, not a recipient).

use crate::domain::{TenantId, UnixTime, WebhookEndpointId};
use serde::Serialize;
use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use crate::{
    config::Engine,
    domain::error::DomainResult,
    domain::events::queue::{self, Queue},
};

pub(super) async fn insert(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    endpoint_id: &WebhookEndpointId,
    event_id: &str,
    event_type: &str,
    payload: &str,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let now = UnixTime::from(now);
    sqlx::query(
        "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, payload, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant_id)
    .bind(endpoint_id)
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A claimed delivery with what is needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub tenant_id: TenantId,
    pub endpoint_id: WebhookEndpointId,
    pub event_type: String,
    pub payload: String,
    pub attempts: i64,
    pub url: String,
    pub secret_sealed: String,
    /// The secret before the last rotation, which signs too until `previous_secret_until`.
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_until: Option<UnixTime>,
    /// The endpoint's health when claimed (see `health`).
    pub paused_until: Option<UnixTime>,
    pub disabled_at: Option<UnixTime>,
}

/// Claims due deliveries for `owner` (see [`queue::claim_due`]).
pub async fn claim_due(
    pool: &AnyPool,
    engine: Engine,
    owner: &str,
    limit: queue::Claim,
    now: OffsetDateTime,
) -> DomainResult<Vec<ClaimedDelivery>> {
    queue::claim_due(
        pool,
        engine,
        Queue::WebhookDeliveries,
        "SELECT d.id, d.tenant_id, d.endpoint_id, d.event_type, d.payload, d.attempts, e.url, \
         e.secret_sealed, e.previous_secret_sealed, e.previous_secret_until, e.paused_until, e.disabled_at \
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.lease_owner = $1 AND d.status = 'pending' AND d.lease_until > $2 ORDER BY d.id",
        owner,
        limit,
        now,
    )
    .await
}

/// The outcome of one attempt.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The receiver's HTTP status, when it answered at all.
    pub status: Option<u16>,
    /// `None` when delivered.
    pub error: Option<&'a str>,
    /// When to try again; `None` with an error means give up.
    pub retry_at: Option<OffsetDateTime>,
}

/// Records an attempt, only if `owner` still holds the lease.
pub async fn record(
    pool: &AnyPool,
    delivery: &ClaimedDelivery,
    owner: &str,
    outcome: Outcome<'_>,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let now_unix = UnixTime::from(now);
    let status = match (outcome.error, outcome.retry_at) {
        (None, _) => "delivered",
        (Some(_), Some(_)) => "pending",
        (Some(_), None) => "failed",
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
         next_attempt_at = $4, delivered_at = $5, lease_owner = NULL, lease_until = NULL \
         WHERE id = $6 AND lease_owner = $7",
    )
    .bind(status)
    .bind(outcome.status.map(i64::from))
    .bind(outcome.error.map(|e| e.chars().take(500).collect::<String>()))
    .bind(outcome.retry_at.map_or(now_unix, UnixTime::from))
    .bind(outcome.error.is_none().then_some(now_unix))
    .bind(delivery.id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts a claimed delivery back, untried, to be claimed again at `until`
/// (its endpoint is paused or disabled, or its turn's time ran out): no
/// attempt is counted.
pub async fn defer(
    pool: &AnyPool,
    delivery: &ClaimedDelivery,
    owner: &str,
    until: OffsetDateTime,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $1, lease_owner = NULL, lease_until = NULL \
         WHERE id = $2 AND lease_owner = $3",
    )
    .bind(UnixTime::from(until))
    .bind(delivery.id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes an endpoint's pending deliveries due now (it was enabled again).
pub async fn resume(
    tx: &mut Transaction<'_, Any>,
    endpoint_id: &WebhookEndpointId,
    now: OffsetDateTime,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $1 \
         WHERE endpoint_id = $2 AND status = 'pending' AND next_attempt_at > $1",
    )
    .bind(UnixTime::from(now))
    .bind(endpoint_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A delivery as the API and the UI show it: never the body's signature or secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    /// `pending` (retrying), `delivered` or `failed` (gave up after retries).
    pub status: String,
    pub attempts: i64,
    /// The receiver's last HTTP status code, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: UnixTime,
    pub delivered_at: Option<UnixTime>,
}

pub async fn list(
    pool: &AnyPool,
    tenant_id: &TenantId,
    endpoint_id: &WebhookEndpointId,
) -> DomainResult<Vec<DeliveryRecord>> {
    Ok(sqlx::query_as(
        "SELECT id, event_id, event_type, status, attempts, last_status, last_error, created_at, delivered_at \
         FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT 200",
    )
    .bind(tenant_id)
    .bind(endpoint_id)
    .fetch_all(pool)
    .await?)
}
