//! The PostgreSQL writer: one statement per batch, the rows sent as arrays
//! and expanded by `UNNEST`, the `last_used_at` update in the same statement
//! (one round trip, one implicit transaction).

use std::{str::FromStr, sync::LazyLock};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::{
    AuditRecord,
    row::{self, CallRow},
};

/// The rows arrive as one array per bound value ([`row::CALL_PARAMS`]),
/// expanded by `UNNEST` into a CTE whose columns carry the same names.
static WRITE: LazyLock<String> = LazyLock::new(|| {
    let params = row::CALL_PARAMS;
    let arrays: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(n, param)| format!("${}::{}[]", n + 1, array_type(param)))
        .collect();
    format!(
        "WITH rows AS ( \
           SELECT * FROM UNNEST({arrays}) WITH ORDINALITY AS r({names}, n) \
         ), inserted AS ( \
           INSERT INTO audit_events ({columns}) SELECT {values} FROM rows ORDER BY n \
         ) \
         UPDATE api_keys k SET last_used_at = used.at \
         FROM (SELECT key_id, MAX(at) AS at FROM rows WHERE outcome = 'allowed' GROUP BY key_id) used \
         WHERE k.id = used.key_id AND (k.last_used_at IS NULL OR k.last_used_at < used.at)",
        arrays = arrays.join(", "),
        names = params.join(", "),
        columns = row::COLUMNS,
        values = row::call_values(|n| params[n - 1].to_owned()),
    )
});

/// The PostgreSQL type of a bound value's array.
fn array_type(param: &str) -> &'static str {
    match param {
        "at" | "duration_us" => "bigint",
        "status" => "int",
        _ => "text",
    }
}

/// Its own small pool: arrays cannot be bound through sqlx's `Any` driver.
pub(super) fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(PgConnectOptions::from_str(url)?))
}

/// Writes `batch`: the rows go as one array per column, borrowed from the records.
pub(super) async fn write(pool: &PgPool, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    let rows: Vec<CallRow<'_>> = batch.iter().map(AuditRecord::row).collect();
    let request_id: Vec<Option<&str>> = rows.iter().map(|r| r.request_id).collect();
    let at: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let status: Vec<Option<i32>> = rows
        .iter()
        .map(|r| r.status.and_then(|s| i32::try_from(s).ok()))
        .collect();
    let duration_us: Vec<Option<i64>> = rows.iter().map(|r| r.duration_us).collect();
    let grant_id: Vec<Option<&str>> = rows.iter().map(|r| r.grant_id).collect();
    let client_id: Vec<Option<&str>> = rows.iter().map(|r| r.client_id).collect();
    sqlx::query(&WRITE)
        .bind(column(&rows, |r| r.tenant_id))
        .bind(column(&rows, |r| r.key_id))
        .bind(column(&rows, |r| r.service_user_id))
        .bind(column(&rows, |r| r.tool))
        .bind(column(&rows, |r| r.outcome))
        .bind(column(&rows, |r| r.reason))
        .bind(request_id)
        .bind(at)
        .bind(status)
        .bind(duration_us)
        .bind(grant_id)
        .bind(client_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// One text value of every row, as the array bound for it.
fn column<'a>(rows: &[CallRow<'a>], value: fn(CallRow<'a>) -> &'a str) -> Vec<&'a str> {
    rows.iter().map(|&r| value(r)).collect()
}
