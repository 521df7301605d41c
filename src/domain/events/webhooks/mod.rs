//! Signed webhooks per tenant: endpoints (URL, sealed secret, event filter)
//! and the events written for them in the same transaction as their cause.

pub mod deliveries;
mod endpoints;
mod events;
pub mod health;
mod secret;
mod target;

use crate::domain::{TenantId, UnixTime, WebhookEndpointId};
use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use crate::domain::crypto::random;
use crate::{
    db::begin_write,
    domain::error::{DomainError, DomainResult},
    domain::{Actor, audit},
};
use keysmith_verify::Peppers;

pub use endpoints::{Endpoint, get, list};
use events::body;
pub use events::enqueue;
pub use secret::{WebhookSecret, signature_header};
pub use target::WebhookUrl;

/// The events an endpoint can subscribe to. `webhook.test` is only ever sent
/// by the "send test event" action, to the endpoint it was asked for.
pub const EVENTS: [&str; 6] = [
    "key.created",
    "key.rotated",
    "key.revoked",
    "key.expiring",
    "key.expired",
    "service_user.disabled",
];
pub const TEST_EVENT: &str = "webhook.test";

/// The tenant an endpoint belongs to: its id, and its slug for logs and
/// event bodies. Rooms that emit events (`tenancy`, `keys`) import this one,
/// so it takes these two fields rather than their `Tenant`.
#[derive(Debug, Clone, Copy)]
pub struct WebhookTenant<'a> {
    pub id: &'a TenantId,
    pub slug: &'a str,
}

/// A non-empty set of known event names.
#[derive(Debug, Clone)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> DomainResult<Self> {
        if names.is_empty() {
            return Err(DomainError::Validation(
                "events: choose at least one event".into(),
            ));
        }
        let mut events = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if !EVENTS.contains(&name) {
                return Err(DomainError::Validation(format!(
                    "events: unknown event {name:?}; known: {}",
                    EVENTS.join(", ")
                )));
            }
            if !events.iter().any(|e| e == name) {
                events.push(name.to_owned());
            }
        }
        Ok(Self(events))
    }
}

/// What the operator allows of endpoints (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// `KEYSMITH_WEBHOOK_ALLOW_PRIVATE`: loopback and private targets.
    pub allow_private: bool,
    /// `KEYSMITH_MAX_WEBHOOKS_PER_TENANT`.
    pub max_per_tenant: i64,
}

impl Admission {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            allow_private: config.webhook_allow_private,
            max_per_tenant: config.max_webhooks_per_tenant,
        }
    }
}

/// What an endpoint is made of, parsed at the edge.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: WebhookUrl,
    pub events: EventFilter,
}

/// A new endpoint and its secret, shown this once.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    pub secret: WebhookSecret,
}

/// Creates an endpoint after checking where its URL resolves.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug))]
pub async fn create(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: WebhookTenant<'_>,
    new: NewEndpoint,
    admission: Admission,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<CreatedEndpoint> {
    let NewEndpoint { url, events } = new;
    url.resolve(admission.allow_private).await?;
    let id = WebhookEndpointId::new(format!("wh_{}", random::base62(16)));
    let secret = WebhookSecret::generate();
    let events_json = serde_json::to_string(&events.0).map_err(anyhow::Error::from)?;
    let mut tx = begin_write(pool).await?;
    crate::db::lock_tenant(&mut tx, pool, tenant.id.as_str()).await?;
    let (existing,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = $1")
            .bind(tenant.id)
            .fetch_one(&mut *tx)
            .await?;
    if existing >= admission.max_per_tenant {
        return Err(DomainError::Validation(format!(
            "a tenant has at most {} webhook endpoints (KEYSMITH_MAX_WEBHOOKS_PER_TENANT): delete one first",
            admission.max_per_tenant
        )));
    }
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, secret_sealed, events, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(tenant.id)
    .bind(url.as_str())
    .bind(secret.seal(peppers, &id)?)
    .bind(&events_json)
    .bind(UnixTime::from(now))
    .bind(actor.to_string())
    .execute(&mut *tx)
    .await?;
    audit_change(
        &mut tx,
        tenant,
        actor,
        "webhook.create",
        &format!("{id} {}", url.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(webhook_id = %id, "webhook endpoint created");
    Ok(CreatedEndpoint {
        endpoint: Endpoint {
            id,
            url: url.as_str().to_owned(),
            events: events.0,
            created_at: UnixTime::from(now),
            created_by: actor.to_string(),
            consecutive_failures: 0,
            disabled_at: None,
        },
        secret,
    })
}

async fn audit_change(
    tx: &mut Transaction<'_, Any>,
    tenant: WebhookTenant<'_>,
    actor: &Actor,
    action: &str,
    reason: &str,
    now: OffsetDateTime,
) -> DomainResult<()> {
    audit::record(
        &mut **tx,
        audit::NewAuditEvent::tenant_action(tenant.id, actor, action, Some(reason), now),
    )
    .await
}

/// Deletes an endpoint and its delivery history.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, webhook_id = %id))]
pub async fn delete(
    pool: &AnyPool,
    tenant: WebhookTenant<'_>,
    id: &WebhookEndpointId,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = begin_write(pool).await?;
    let url: Option<(String,)> =
        sqlx::query_as("SELECT url FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((url,)) = url else {
        return Err(DomainError::NotFound("webhook"));
    };
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit_change(
        &mut tx,
        tenant,
        actor,
        "webhook.delete",
        &format!("{id} {url}"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues a `webhook.test` event for one endpoint: at most one per
/// [`health::TEST_EVENT_SPACING`], and none to a disabled endpoint.
pub async fn send_test(
    pool: &AnyPool,
    tenant: WebhookTenant<'_>,
    id: &WebhookEndpointId,
    now: OffsetDateTime,
) -> DomainResult<String> {
    let endpoint = get(pool, tenant.id, id).await?;
    if endpoint.disabled_at.is_some() {
        return Err(DomainError::Conflict(
            "the endpoint is disabled after failing: enable it first".into(),
        ));
    }
    let event_id = format!("evt_{}", random::base62(20));
    let data = serde_json::json!({"message": "a test event from Keysmith", "webhook_id": id});
    let payload = body(&event_id, TEST_EVENT, tenant.slug, &data, now)?;
    let mut tx = begin_write(pool).await?;
    health::take_test_slot(&mut tx, tenant.id, id, now).await?;
    deliveries::insert(&mut tx, tenant.id, id, &event_id, TEST_EVENT, &payload, now).await?;
    tx.commit().await?;
    Ok(event_id)
}

/// The longest overlap a rotation may ask for.
pub const MAX_SECRET_OVERLAP: time::Duration = time::Duration::hours(72);

/// Gives an endpoint a new signing secret, shown this once. Until
/// `now + overlap` deliveries are signed with the previous secret too (an
/// overlap of zero drops it at once: the way to answer a leaked secret); a
/// previous secret still in its overlap is dropped.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, webhook_id = %id))]
pub async fn rotate_secret(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: WebhookTenant<'_>,
    id: &WebhookEndpointId,
    overlap: time::Duration,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<WebhookSecret> {
    if overlap.is_negative() || overlap > MAX_SECRET_OVERLAP {
        return Err(DomainError::validation(format!(
            "overlap_hours must be from 0 to {}",
            MAX_SECRET_OVERLAP.whole_hours()
        )));
    }
    let secret = WebhookSecret::generate();
    let sealed = secret.seal(peppers, id)?;
    let mut tx = begin_write(pool).await?;
    let previous: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT secret_sealed FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2{}",
        crate::db::row_lock(pool)
    ))
    .bind(tenant.id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (previous,) = previous.ok_or(DomainError::NotFound("webhook"))?;
    let keep_previous = overlap.is_positive();
    sqlx::query(
        "UPDATE webhook_endpoints SET secret_sealed = $1, previous_secret_sealed = $2, \
         previous_secret_until = $3 WHERE tenant_id = $4 AND id = $5",
    )
    .bind(&sealed)
    .bind(keep_previous.then_some(previous))
    .bind(keep_previous.then(|| UnixTime::from(now + overlap)))
    .bind(tenant.id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let what = format!("{id}, overlap {} h", overlap.whole_hours());
    audit_change(&mut tx, tenant, actor, "webhook.rotate_secret", &what, now).await?;
    tx.commit().await?;
    Ok(secret)
}

/// Enables an endpoint that was disabled after failing (or is paused), with
/// a clean record; its pending deliveries are tried on the next round.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, webhook_id = %id))]
pub async fn enable(
    pool: &AnyPool,
    tenant: WebhookTenant<'_>,
    id: &WebhookEndpointId,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = begin_write(pool).await?;
    health::enable(&mut tx, tenant.id, id).await?;
    deliveries::resume(&mut tx, id, now).await?;
    audit_change(&mut tx, tenant, actor, "webhook.enable", id.as_str(), now).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filter_rules() {
        assert!(EventFilter::parse::<&str>(&[]).is_err());
        assert!(EventFilter::parse(&["key.created", "nope"]).is_err());
        assert!(EventFilter::parse(&[TEST_EVENT]).is_err());
        let filter =
            EventFilter::parse(&["key.created", "key.created", "key.revoked"]).expect("ok");
        assert_eq!(filter.0, ["key.created", "key.revoked"]);
    }
}
