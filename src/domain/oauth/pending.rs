//! Grants awaiting their code: approving consent writes a grant pending,
//! and the first successful redemption of its code makes it live. A grant
//! whose code expired unredeemed (never presented, refused, or burnt by a
//! wrong verifier) is deleted by the scheduler and its parent key revoked,
//! so an abandoned consent leaves no connection behind.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use crate::{
    db::{begin_write, row_lock},
    domain::error::DomainResult,
    domain::{Actor, KeyId, ServiceUserId, TenantId, UnixTime, audit},
};

/// Grants swept per scheduler tick; the next tick goes on.
const SWEEP_BATCH: i64 = 500;

/// A pending grant with no code left that could still be redeemed.
const ABANDONED: &str = "g.redeemed_at IS NULL AND NOT EXISTS \
     (SELECT 1 FROM oauth_codes c WHERE c.grant_id = g.id AND c.used_at IS NULL AND c.expires_at > $1)";

/// Makes the grant live, inside the redemption's transaction (the code is
/// single-use, so this runs once per grant).
pub(crate) async fn mark_redeemed(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    grant_id: &str,
    now: OffsetDateTime,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE oauth_grants SET redeemed_at = $1 \
         WHERE tenant_id = $2 AND id = $3 AND redeemed_at IS NULL",
    )
    .bind(UnixTime::from(now))
    .bind(tenant_id)
    .bind(grant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A pending grant as the sweep reads it.
#[derive(sqlx::FromRow)]
struct Abandoned {
    id: String,
    tenant_id: TenantId,
    key_id: KeyId,
    service_user_id: ServiceUserId,
}

/// Deletes the pending grants whose codes can no longer be redeemed at
/// `now`, one transaction each (a re-run is harmless); returns how many.
#[tracing::instrument(skip_all)]
pub async fn sweep_unredeemed(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<u64> {
    let found: Vec<Abandoned> = sqlx::query_as(&format!(
        "SELECT g.id, g.tenant_id, g.key_id, g.service_user_id FROM oauth_grants g \
         WHERE {ABANDONED} LIMIT $2"
    ))
    .bind(UnixTime::from(now))
    .bind(SWEEP_BATCH)
    .fetch_all(pool)
    .await?;
    let mut swept = 0;
    for grant in &found {
        if forget(pool, grant, now).await? {
            swept += 1;
        }
    }
    if swept > 0 {
        tracing::info!(swept, "unredeemed oauth grants deleted");
    }
    Ok(swept)
}

/// Deletes one abandoned grant and its codes, revokes its parent key (its
/// plaintext was never shown: nothing can have cached a verdict of it),
/// cancels the connection email if it is still queued, and audits
/// `oauth.consent.expire`. False if it was redeemed meanwhile.
async fn forget(pool: &AnyPool, grant: &Abandoned, now: OffsetDateTime) -> DomainResult<bool> {
    let mut tx = begin_write(pool).await?;
    let at = UnixTime::from(now);
    // The grant's row first, as every writer of a grant does; then the
    // check again under the lock.
    let still: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT g.id FROM oauth_grants g WHERE g.tenant_id = $2 AND g.id = $3 AND {ABANDONED}{}",
        row_lock(pool)
    ))
    .bind(at)
    .bind(&grant.tenant_id)
    .bind(&grant.id)
    .fetch_optional(&mut *tx)
    .await?;
    if still.is_none() {
        return Ok(false);
    }
    for sql in [
        "DELETE FROM oauth_codes WHERE tenant_id = $1 AND grant_id = $2",
        "DELETE FROM oauth_grants WHERE tenant_id = $1 AND id = $2",
    ] {
        sqlx::query(sql)
            .bind(&grant.tenant_id)
            .bind(&grant.id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE api_keys SET status = 'revoked', revoked_at = $1, \
         revoked_reason = 'oauth consent never redeemed' \
         WHERE tenant_id = $2 AND id = $3 AND status IN ('active', 'rotating')",
    )
    .bind(at)
    .bind(&grant.tenant_id)
    .bind(&grant.key_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE outbox SET status = 'cancelled' \
         WHERE tenant_id = $1 AND key_id = $2 AND kind = 'oauth_connected' AND status = 'pending'",
    )
    .bind(&grant.tenant_id)
    .bind(&grant.key_id)
    .execute(&mut *tx)
    .await?;
    let subject = format!("grant {}", grant.id);
    let mut event = audit::NewAuditEvent::key_action(
        &grant.tenant_id,
        (&grant.key_id, &grant.service_user_id),
        &Actor::System,
        "oauth.consent.expire",
        Some("the authorization code was never redeemed"),
        now,
    );
    event.tool = Some(&subject);
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(true)
}
