//! What the clock does to keys: rotated keys revoked at their cutoff, expired keys recorded.

use crate::domain::{KeyId, ServiceUserId, TenantId, UnixTime};
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::{
    domain::error::DomainResult,
    domain::{Actor, audit},
};

/// What one sweep changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub revoked_after_rotation: u64,
    pub expired: u64,
    /// Keys whose transition failed: logged, left for the next sweep.
    pub skipped: u64,
}

/// Revokes rotated keys past their cutoff (reason `rotated`) and marks expired
/// keys. Row by row, each with its audit event in its own transaction and a
/// conditional update, so a re-run or a second instance does nothing twice.
#[tracing::instrument(skip_all)]
pub async fn sweep(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<SweepReport> {
    let now_unix = UnixTime::from(now);
    let mut report = SweepReport::default();
    let due: Vec<(KeyId, TenantId, ServiceUserId, UnixTime)> = sqlx::query_as(
        "SELECT id, tenant_id, service_user_id, cutoff_at FROM api_keys WHERE status = 'rotating' AND cutoff_at <= $1",
    )
    .bind(now_unix)
    .fetch_all(pool)
    .await?;
    for (id, tenant_id, service_user_id, cutoff_at) in due {
        let done = transition(
            pool,
            &id,
            &tenant_id,
            &service_user_id,
            Transition::RevokeRotated { cutoff_at },
            now,
        )
        .await;
        report.count(&id, done, |r| &mut r.revoked_after_rotation);
    }
    let expired: Vec<(KeyId, TenantId, ServiceUserId, i64)> = sqlx::query_as(
        "SELECT id, tenant_id, service_user_id, expires_at FROM api_keys WHERE status = 'active' AND expires_at <= $1",
    )
    .bind(now_unix)
    .fetch_all(pool)
    .await?;
    for (id, tenant_id, service_user_id, _) in expired {
        let done = transition(
            pool,
            &id,
            &tenant_id,
            &service_user_id,
            Transition::Expire,
            now,
        )
        .await;
        report.count(&id, done, |r| &mut r.expired);
    }
    if report != SweepReport::default() {
        tracing::info!(?report, "lifecycle sweep");
    }
    Ok(report)
}

impl SweepReport {
    /// One key's outcome: counted when it changed, skipped (and logged) when
    /// it failed, so one bad row never stops the rest of the sweep.
    fn count(
        &mut self,
        key_id: &KeyId,
        done: DomainResult<bool>,
        field: impl Fn(&mut Self) -> &mut u64,
    ) {
        match done {
            Ok(true) => *field(self) += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::error!(%key_id, error = %err, "lifecycle sweep skipped a key");
                self.skipped += 1;
            }
        }
    }
}

enum Transition {
    RevokeRotated { cutoff_at: UnixTime },
    Expire,
}

async fn transition(
    pool: &AnyPool,
    id: &KeyId,
    tenant_id: &TenantId,
    service_user_id: &ServiceUserId,
    transition: Transition,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let mut tx = crate::db::begin_write(pool).await?;
    let (updated, action, reason) = match &transition {
        Transition::RevokeRotated { cutoff_at } => (
            sqlx::query(
                "UPDATE api_keys SET status = 'revoked', revoked_at = $1, revoked_reason = 'rotated' WHERE id = $2 AND status = 'rotating'",
            )
            .bind(*cutoff_at)
            .bind(id)
            .execute(&mut *tx)
            .await?,
            "key.revoke",
            Some("rotated"),
        ),
        Transition::Expire => (
            sqlx::query("UPDATE api_keys SET status = 'expired' WHERE id = $1 AND status = 'active'")
                .bind(id)
                .execute(&mut *tx)
                .await?,
            "key.expire",
            None,
        ),
    };
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    audit::record(
        &mut *tx,
        audit::NewAuditEvent {
            tenant_id,
            key_id: Some(id),
            service_user_id: Some(service_user_id),
            actor: Actor::System.to_string(),
            action,
            tool: None,
            outcome: "ok",
            reason,
            request_id: None,
            at: now,
        },
    )
    .await?;
    let row = super::queries::fetch(&mut *tx, tenant_id, id).await?;
    let event = match transition {
        Transition::RevokeRotated { .. } => "key.revoked",
        Transition::Expire => "key.expired",
    };
    crate::domain::events::webhooks::enqueue(&mut tx, tenant_id, event, row.event_data(), now)
        .await?;
    // Metrics name tenants by slug, as people do.
    let tenant_slug: String = sqlx::query_scalar("SELECT slug FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let event = if action == "key.expire" {
        "expired"
    } else {
        "revoked"
    };
    crate::metrics::key_event(event, &tenant_slug, Actor::System.channel());
    Ok(true)
}
