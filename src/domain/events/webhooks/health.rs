//! A webhook endpoint's health, so that no tenant's receiver can hold up
//! anyone else's: each failed attempt pauses the endpoint (its other queued
//! deliveries wait without being tried), a run of failures disables it and
//! tells the tenant's owners, test events are spaced out, and a tenant has
//! a bounded number of endpoints.

use sqlx::{Any, AnyPool, Transaction};
use time::{Duration, OffsetDateTime};

use crate::domain::{
    Actor, TenantId, UnixTime, WebhookEndpointId, audit, events::notice::WebhookDisabledNotice,
    events::outbox,
};
use crate::{
    db::begin_write,
    domain::error::{DomainError, DomainResult},
};

/// Failed attempts in a row after which an endpoint is disabled. With the
/// pauses below that is about 15 hours of a receiver failing everything.
pub const DISABLE_AFTER_FAILURES: i64 = 20;

/// The pause after the first failure; each further one doubles it.
const FIRST_PAUSE: Duration = Duration::seconds(30);
const LONGEST_PAUSE: Duration = Duration::hours(1);

/// One test event per endpoint in this long.
pub const TEST_EVENT_SPACING: Duration = Duration::seconds(10);

/// How long an endpoint waits after its `failures`-th failure in a row.
pub fn pause_after(failures: i64) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    (FIRST_PAUSE * 2_i32.pow(doublings)).min(LONGEST_PAUSE)
}

/// A delivery reached its receiver: the endpoint is healthy again.
pub async fn record_success(pool: &AnyPool, endpoint_id: &WebhookEndpointId) -> DomainResult<()> {
    sqlx::query(
        "UPDATE webhook_endpoints SET consecutive_failures = 0, paused_until = NULL \
         WHERE id = $1 AND (consecutive_failures > 0 OR paused_until IS NOT NULL)",
    )
    .bind(endpoint_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A failed attempt: pauses the endpoint, and disables it at
/// [`DISABLE_AFTER_FAILURES`] in a row (audited, owners told, once).
/// Returns when the endpoint may be tried again (`None`: disabled).
#[tracing::instrument(skip_all, fields(webhook_id = %endpoint_id))]
pub async fn record_failure(
    pool: &AnyPool,
    endpoint_id: &WebhookEndpointId,
    error: &str,
    now: OffsetDateTime,
) -> DomainResult<Option<OffsetDateTime>> {
    let mut tx = begin_write(pool).await?;
    let row: Option<(TenantId, String, i64, Option<UnixTime>)> = sqlx::query_as(
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 \
         WHERE id = $1 RETURNING tenant_id, url, consecutive_failures, disabled_at",
    )
    .bind(endpoint_id)
    .fetch_optional(&mut *tx)
    .await?;
    // Deleted meanwhile: nothing left to pause.
    let Some((tenant_id, url, failures, disabled_at)) = row else {
        return Ok(None);
    };
    if disabled_at.is_some() {
        tx.commit().await?;
        return Ok(None);
    }
    if failures >= DISABLE_AFTER_FAILURES {
        disable(&mut tx, &tenant_id, endpoint_id, &url, failures, error, now).await?;
        tx.commit().await?;
        return Ok(None);
    }
    let until = now + pause_after(failures);
    sqlx::query("UPDATE webhook_endpoints SET paused_until = $1 WHERE id = $2")
        .bind(UnixTime::from(until))
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(until))
}

async fn disable(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    endpoint_id: &WebhookEndpointId,
    url: &str,
    failures: i64,
    error: &str,
    now: OffsetDateTime,
) -> DomainResult<()> {
    sqlx::query("UPDATE webhook_endpoints SET disabled_at = $1, paused_until = NULL WHERE id = $2")
        .bind(UnixTime::from(now))
        .bind(endpoint_id)
        .execute(&mut **tx)
        .await?;
    let what = format!("{endpoint_id} after {failures} failed deliveries in a row");
    audit::record(
        &mut **tx,
        audit::NewAuditEvent::tenant_action(
            tenant_id,
            &Actor::System,
            "webhook.disable",
            Some(&what),
            now,
        ),
    )
    .await?;
    let (tenant_name,): (String,) = sqlx::query_as("SELECT name FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN admin_users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND m.role = 'owner' AND u.disabled_at IS NULL ORDER BY u.email",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let notice = WebhookDisabledNotice {
        tenant_name,
        webhook_id: endpoint_id.to_string(),
        url: url.to_owned(),
        failures,
        last_error: error.chars().take(300).collect(),
        disabled_at: UnixTime::from(now),
    };
    outbox::enqueue_webhook_disabled(tx, tenant_id, &owners, &notice, now).await?;
    tracing::warn!(webhook_id = %endpoint_id, failures, "webhook endpoint disabled");
    Ok(())
}

/// Enables a disabled (or paused) endpoint again, with a clean record.
pub async fn enable(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    endpoint_id: &WebhookEndpointId,
) -> DomainResult<()> {
    let updated = sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = NULL, paused_until = NULL, consecutive_failures = 0 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(endpoint_id)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DomainError::NotFound("webhook"));
    }
    Ok(())
}

/// Takes the endpoint's test-event slot: at most one per
/// [`TEST_EVENT_SPACING`], decided by one conditional update so a burst of
/// requests gets exactly one through.
pub async fn take_test_slot(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    endpoint_id: &WebhookEndpointId,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let taken = sqlx::query(
        "UPDATE webhook_endpoints SET last_test_at = $1 \
         WHERE tenant_id = $2 AND id = $3 AND (last_test_at IS NULL OR last_test_at <= $4)",
    )
    .bind(UnixTime::from(now))
    .bind(tenant_id)
    .bind(endpoint_id)
    .bind(UnixTime::from(now - TEST_EVENT_SPACING))
    .execute(&mut **tx)
    .await?;
    if taken.rows_affected() == 1 {
        Ok(())
    } else {
        Err(DomainError::TooManyAttempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_an_hour() {
        assert_eq!(pause_after(1), Duration::seconds(30));
        assert_eq!(pause_after(2), Duration::minutes(1));
        assert_eq!(pause_after(4), Duration::minutes(4));
        assert_eq!(pause_after(8), Duration::hours(1));
        assert_eq!(pause_after(i64::MAX), Duration::hours(1));
        assert_eq!(pause_after(0), Duration::seconds(30));
        let total: Duration = (1..DISABLE_AFTER_FAILURES).map(pause_after).sum();
        assert!(
            total > Duration::hours(12) && total < Duration::hours(24),
            "{total}"
        );
    }
}
