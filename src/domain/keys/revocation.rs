//! Revoke a key at once: the key, the OAuth grant it backs, and the events
//! that tell gateways, webhooks and the outbox.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::{KeyRow, KeyState, notices::announce_revocation, queries::fetch};
use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{Actor, KeyId, TenantId, UnixTime, audit, tenancy::tenants::Tenant},
};

/// Reads a key that still works (active or rotating); any other is a `409`.
pub(super) async fn fetch_live(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    key_id: &KeyId,
    now: OffsetDateTime,
) -> DomainResult<KeyRow> {
    let current = fetch(&mut **tx, tenant_id, key_id).await?;
    let status = current.status_at(now);
    if !matches!(status, KeyState::Active | KeyState::Rotating) {
        return Err(DomainError::Conflict(format!(
            "the key is already {}",
            status.as_str()
        )));
    }
    Ok(current)
}

/// Revokes an active or rotating key at once.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, key_id = %key_id))]
pub async fn revoke(
    pool: &AnyPool,
    tenant: &Tenant,
    key_id: &KeyId,
    reason: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<KeyRow> {
    let mut tx = crate::db::begin_write(pool).await?;
    let current = fetch_live(&mut tx, &tenant.id, key_id, now).await?;
    // A key that backs an OAuth grant ends the grant with it, so the
    // Connections page does not show a connection that no longer works.
    // The grant first: every writer of a grant and its key takes that order.
    sqlx::query(
        "UPDATE oauth_grants SET revoked_at = $1, revoked_reason = 'key revoked' \
         WHERE tenant_id = $2 AND key_id = $3 AND revoked_at IS NULL",
    )
    .bind(UnixTime::from(now))
    .bind(&tenant.id)
    .bind(key_id)
    .execute(&mut *tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE api_keys SET status = 'revoked', revoked_at = $1, revoked_reason = $2 \
         WHERE tenant_id = $3 AND id = $4 AND status IN ('active', 'rotating')",
    )
    .bind(UnixTime::from(now))
    .bind(reason)
    .bind(&tenant.id)
    .bind(key_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(DomainError::Conflict(
            "the key changed while revoking; reload and try again".into(),
        ));
    }
    audit::record(
        &mut *tx,
        audit::NewAuditEvent {
            tenant_id: &tenant.id,
            key_id: Some(key_id),
            service_user_id: Some(&current.service_user_id),
            actor: actor.to_string(),
            action: "key.revoke",
            tool: None,
            outcome: "ok",
            reason: Some(reason),
            request_id: None,
            at: now,
        },
    )
    .await?;
    let row = fetch(&mut *tx, &tenant.id, key_id).await?;
    announce_revocation(&mut tx, tenant, &row, reason, actor, now).await?;
    crate::db::announce_key_change(&mut tx, pool, key_id.as_str()).await?;
    tx.commit().await?;
    crate::metrics::key_event("revoked", &tenant.slug, actor.channel());
    tracing::info!("key revoked");
    Ok(row)
}
