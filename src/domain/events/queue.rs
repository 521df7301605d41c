//! The lease discipline shared by the tables that work as queues (the email
//! outbox, webhook deliveries): due `pending` rows are leased to one owner at
//! a time, and a sender that dies mid-send releases its rows when the lease
//! runs out. Each table records its own outcomes (see `outbox::record`,
//! `webhooks::deliveries::record`), always only while its owner holds the lease.

use sqlx::{AnyPool, any::AnyRow};
use time::{Duration, OffsetDateTime};

use crate::{config::Engine, db::begin_write, domain::UnixTime, domain::error::DomainResult};

/// How long a claim lasts: a sender that dies mid-send releases its rows after this.
pub const LEASE: Duration = Duration::minutes(2);

/// A queue table: `id`, `status`, `next_attempt_at`, `lease_owner`,
/// `lease_until`. Its name goes into SQL, so it is one of these, never input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Outbox,
    WebhookDeliveries,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::WebhookDeliveries => "webhook_deliveries",
        }
    }
}

/// How many rows one claim takes.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub rows: i64,
    /// At most this many of one tenant's rows (`None`: no such bound).
    pub per_tenant: Option<i64>,
}

/// Leases up to `limit` due rows of `queue` to `owner`, then reads what
/// `owner` holds with `select` (`$1` = owner, `$2` = now; it must keep
/// `lease_owner = $1 AND status = 'pending' AND lease_until > $2`), in one
/// transaction. On PostgreSQL, `SKIP LOCKED` lets several instances claim
/// disjoint rows at once; SQLite serializes writers, and the lease condition
/// does the rest.
pub async fn claim_due<T>(
    pool: &AnyPool,
    engine: Engine,
    queue: Queue,
    select: &'static str,
    owner: &str,
    limit: Claim,
    now: OffsetDateTime,
) -> DomainResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    let now_unix = UnixTime::from(now);
    let lock = if engine == Engine::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let table = queue.table();
    let due = "status = 'pending' AND next_attempt_at <= $3 \
               AND (lease_until IS NULL OR lease_until <= $3)";
    // Oldest first, but at most `per_tenant` rows of any one tenant: a
    // tenant with thousands queued takes its turn beside the others instead
    // of filling every claim.
    let fair = match limit.per_tenant {
        None => String::new(),
        Some(per_tenant) => format!(
            " AND id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
               (PARTITION BY tenant_id ORDER BY id) AS turn FROM {table} WHERE {due}) AS queued \
             WHERE turn <= {per_tenant})"
        ),
    };
    let mut tx = begin_write(pool).await?;
    sqlx::query(&format!(
        "UPDATE {table} SET lease_owner = $1, lease_until = $2 WHERE id IN (\
           SELECT id FROM {table} WHERE {due}{fair} ORDER BY id LIMIT $4{lock})"
    ))
    .bind(owner)
    .bind(UnixTime::from(now + LEASE))
    .bind(now_unix)
    .bind(limit.rows)
    .execute(&mut *tx)
    .await?;
    let claimed = sqlx::query_as(select)
        .bind(owner)
        .bind(now_unix)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(claimed)
}
