//! Dynamically registered clients that were never used: registration is
//! open to anyone, so a client that got no grant within
//! `KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS` of its registration is deleted by
//! the scheduler, freeing its place under the tenant's cap. Pre-registered
//! clients (an admin's) and clients with any grant, live, pending or
//! ended, are never purged.

use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::{
    db::begin_write,
    domain::error::DomainResult,
    domain::{Actor, TenantId, UnixTime, audit},
};

/// Clients purged per scheduler tick; the next tick goes on.
const PURGE_BATCH: i64 = 500;

/// A registered client, older than the cutoff `$1`, that no grant names.
const UNUSED: &str = "c.kind = 'registered' AND c.created_at < $1 AND NOT EXISTS \
     (SELECT 1 FROM oauth_grants g WHERE g.tenant_id = c.tenant_id AND g.client_id = c.id)";

/// Deletes the registered clients unused `unused_hours` after their
/// registration, one transaction each (a re-run is harmless), each audited
/// `oauth.client_purged`; returns how many went.
#[tracing::instrument(skip(pool))]
pub async fn purge_unused(
    pool: &AnyPool,
    now: OffsetDateTime,
    unused_hours: i64,
) -> DomainResult<u64> {
    let cutoff = UnixTime::from(now - time::Duration::hours(unused_hours));
    let found: Vec<(TenantId, String)> = sqlx::query_as(&format!(
        "SELECT c.tenant_id, c.id FROM oauth_clients c WHERE {UNUSED} LIMIT $2"
    ))
    .bind(cutoff)
    .bind(PURGE_BATCH)
    .fetch_all(pool)
    .await?;
    let mut purged = 0;
    for (tenant_id, client_id) in &found {
        let mut tx = begin_write(pool).await?;
        // The condition again, in the delete: a grant may have come since.
        let done = sqlx::query(&format!(
            "DELETE FROM oauth_clients WHERE tenant_id = $2 AND id = $3 AND id IN \
             (SELECT c.id FROM oauth_clients c WHERE c.tenant_id = $2 AND c.id = $3 AND {UNUSED})"
        ))
        .bind(cutoff)
        .bind(tenant_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            continue;
        }
        let reason = format!("registered and unused for {unused_hours} hours");
        let subject = format!("client {client_id}");
        let mut event = audit::NewAuditEvent::tenant_action(
            tenant_id,
            &Actor::System,
            "oauth.client_purged",
            Some(&reason),
            now,
        );
        event.tool = Some(&subject);
        audit::record(&mut *tx, event).await?;
        tx.commit().await?;
        purged += 1;
    }
    if purged > 0 {
        tracing::info!(purged, "unused registered oauth clients deleted");
    }
    Ok(purged)
}
