//! The PostgreSQL writer: one statement per batch, the rows sent as arrays
//! and expanded by `UNNEST`, the `last_used_at` update in the same statement
//! (one round trip, one implicit transaction).

use std::str::FromStr;

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::AuditRecord;
use crate::timestamp;

const WRITE: &str = "WITH rows AS ( \
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::int[], $10::bigint[]) \
       WITH ORDINALITY AS r(tenant_id, key_id, service_user_id, tool, outcome, reason, request_id, at, status, duration_us, n) \
     ), inserted AS ( \
       INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at, status, duration_us) \
       SELECT tenant_id, key_id, service_user_id, 'key:' || key_id, 'tool.call', tool, outcome, reason, request_id, at, status, duration_us \
       FROM rows ORDER BY n \
     ) \
     UPDATE api_keys k SET last_used_at = used.at \
     FROM (SELECT key_id, MAX(at) AS at FROM rows WHERE outcome = 'allowed' GROUP BY key_id) used \
     WHERE k.id = used.key_id AND (k.last_used_at IS NULL OR k.last_used_at < used.at)";

/// Its own small pool: arrays cannot be bound through sqlx's `Any` driver.
pub(super) fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(PgConnectOptions::from_str(url)?))
}

/// Writes `batch`: the rows go as one array per column, borrowed from the records.
pub(super) async fn write(pool: &PgPool, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    let column = |f: fn(&AuditRecord) -> &str| batch.iter().map(f).collect::<Vec<&str>>();
    let request_id: Vec<Option<&str>> = batch.iter().map(|r| r.request_id.as_deref()).collect();
    let at: Vec<i64> = batch.iter().map(|r| timestamp::to_unix(r.at)).collect();
    let status: Vec<Option<i32>> = batch.iter().map(|r| r.status.map(i32::from)).collect();
    let duration_us: Vec<Option<i64>> = batch
        .iter()
        .map(|r| r.duration_us.map(super::clamp_us))
        .collect();
    sqlx::query(WRITE)
        .bind(column(|r| &r.tenant_id))
        .bind(column(|r| &r.key_id))
        .bind(column(|r| &r.service_user_id))
        .bind(column(|r| &r.tool))
        .bind(column(|r| super::outcome(r.allowed)))
        .bind(column(|r| r.reason))
        .bind(request_id)
        .bind(at)
        .bind(status)
        .bind(duration_us)
        .execute(pool)
        .await?;
    Ok(())
}
