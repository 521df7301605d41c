//! Daily rollups of tool calls per key and tool (calls, denied, errors and a
//! duration histogram), written by the scheduler for complete UTC days and
//! kept after retention deletes the raw rows. A day is claimed and written
//! in one transaction, so it is counted exactly once however many instances
//! run the scheduler. Hourly rollups cover the complete hours of the days
//! not rolled up yet and the last [`HOURS_KEPT`] hours, the history of the
//! anomaly check; minute rollups (`minutes.rs`) cover the hours not rolled
//! up yet, so readers count only the last minute or two raw.

use std::collections::{BTreeMap, HashSet};

use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::{KeyId, TenantId, UnixTime};
use crate::{
    domain::audit::latency_histogram::{self, Histogram},
    domain::error::DomainResult,
};

mod frontiers;
mod minutes;

pub use frontiers::{Frontiers, Split};
pub use minutes::{MINUTE, roll_up_minutes};

pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;
/// A day is rolled up this long after it ends: events stamped just before
/// midnight may still be in the audit writer's queue.
const GRACE_SECS: i64 = 300;
/// Days rolled up per tick: after a long outage (or on upgrade) each tick
/// reads a bounded amount; retention waits for the days still to do.
const DAYS_PER_TICK: usize = 10;
/// Hours rolled up per tick, for after a long outage.
const HOURS_PER_TICK: usize = 48;
/// Hours before the current one that stay in the hourly rollups even when
/// their day is rolled up: the history of the anomaly check.
pub const HOURS_KEPT: i64 = 7 * 24;
/// Rollup rows per INSERT statement.
const INSERT_CHUNK: usize = 100;

/// The UTC midnight starting the day of `at` (unix seconds).
pub fn day_of(at: i64) -> i64 {
    at.div_euclid(DAY) * DAY
}

/// What calls of one tool by one key came to, over one day or several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub calls: i64,
    pub denied: i64,
    pub errors: i64,
    pub durations: Histogram,
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.calls += other.calls;
        self.denied += other.denied;
        self.errors += other.errors;
        self.durations.merge(&other.durations);
    }

    /// Adds one row of [`calls_by_bucket_sql`]; bucket `-1`: no duration.
    pub fn add_bucket(&mut self, bucket: i64, calls: i64, denied: i64, errors: i64) {
        self.calls += calls;
        self.denied += denied;
        self.errors += errors;
        if let Ok(bucket) = usize::try_from(bucket) {
            self.durations.add(bucket, calls);
        }
    }
}

/// Tool calls of `audit_events` matching `filter`, counted per `group`
/// columns and duration bucket. Denied: not allowed; errors: the upstream
/// answered 5xx or not at all.
pub fn calls_by_bucket_sql(group: &str, filter: &str) -> String {
    format!(
        "SELECT {group}, CAST({bucket} AS BIGINT) AS bucket, COUNT(*) AS calls, \
         SUM(CASE WHEN outcome = 'allowed' THEN 0 ELSE 1 END) AS denied, \
         SUM(CASE WHEN status IS NULL OR status >= 500 THEN 1 ELSE 0 END) AS errors \
         FROM audit_events WHERE action = 'tool.call' AND tool IS NOT NULL AND {filter} \
         GROUP BY {group}, bucket",
        bucket = latency_histogram::bucket_sql(),
    )
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RollupReport {
    /// Days this run rolled up (not those another instance did).
    pub days: usize,
    pub calls: i64,
}

/// Rolls up the oldest complete days that have raw tool calls and no rollup
/// yet, at most [`DAYS_PER_TICK`].
#[tracing::instrument(skip(pool))]
pub async fn roll_up_due(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<RollupReport> {
    let complete_before = day_of(UnixTime::from(now).secs() - GRACE_SECS);
    let mut report = RollupReport::default();
    for day in unrolled_days(pool, complete_before, DAYS_PER_TICK).await? {
        if let Some(calls) = roll_up_day(pool, day, now).await? {
            report.days += 1;
            report.calls += calls;
        }
    }
    if report.days > 0 {
        tracing::info!(
            days = report.days,
            calls = report.calls,
            "audit days rolled up"
        );
    }
    Ok(report)
}

/// Up to `limit` days before `before` with raw tool calls and no rollup,
/// oldest first. Walks the days that have calls with one indexed lookup
/// each: as many as retention keeps, not one per row.
pub async fn unrolled_days(pool: &AnyPool, before: i64, limit: usize) -> DomainResult<Vec<i64>> {
    let rolled: HashSet<i64> =
        sqlx::query_scalar::<_, i64>("SELECT day FROM audit_rollup_days WHERE day < $1")
            .bind(before)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let mut days = Vec::new();
    let mut from = i64::MIN;
    while days.len() < limit {
        let Some(at) = first_call_from(pool, from, before).await? else {
            break;
        };
        let day = day_of(at);
        if !rolled.contains(&day) {
            days.push(day);
        }
        from = day + DAY;
    }
    Ok(days)
}

/// Tenant, key and tool name.
type Group = (TenantId, KeyId, String);

/// Tool calls at `[from, to)` per key and tool.
async fn count_calls(pool: &AnyPool, from: i64, to: i64) -> DomainResult<Vec<(Group, Tally)>> {
    let sql = calls_by_bucket_sql(
        "tenant_id, key_id, tool",
        "key_id IS NOT NULL AND at >= $1 AND at < $2",
    );
    let rows: Vec<(TenantId, KeyId, String, i64, i64, i64, i64)> = sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
    let mut tallies: BTreeMap<Group, Tally> = BTreeMap::new();
    for (tenant_id, key_id, tool, bucket, calls, denied, errors) in rows {
        tallies
            .entry((tenant_id, key_id, tool))
            .or_default()
            .add_bucket(bucket, calls, denied, errors);
    }
    Ok(tallies.into_iter().collect())
}

/// A rollup table: its periods are `len` seconds long, keyed by their
/// start in `column`.
struct Rollups {
    table: &'static str,
    column: &'static str,
    len: i64,
}

/// Days, claimed first (`audit_rollup_days`), kept beyond retention.
const DAYS: Rollups = Rollups {
    table: "audit_rollups",
    column: "day",
    len: DAY,
};
/// Hours and minutes, written whole and overwritten whole.
const HOURS: Rollups = Rollups {
    table: "audit_rollup_hours",
    column: "hour",
    len: HOUR,
};
const MINUTES: Rollups = Rollups {
    table: "audit_rollup_minutes",
    column: "minute",
    len: MINUTE,
};

/// Writes the tallies of the period of `rollups` starting at `start`.
async fn write_tallies(
    conn: &mut sqlx::AnyConnection,
    (rollups, start): (&Rollups, i64),
    tallies: &[(Group, Tally)],
) -> DomainResult<()> {
    for chunk in tallies.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let params: Vec<String> = (1..=8).map(|n| format!("${}", i * 8 + n)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} (tenant_id, key_id, tool, {column}, calls, denied, errors, durations) VALUES {values} \
             ON CONFLICT (tenant_id, key_id, {column}, tool) DO UPDATE SET calls = excluded.calls, \
             denied = excluded.denied, errors = excluded.errors, durations = excluded.durations",
            table = rollups.table,
            column = rollups.column,
            values = values.join(", "),
        );
        let mut insert = sqlx::query(&sql);
        for ((tenant_id, key_id, tool), tally) in chunk {
            insert = insert
                .bind(tenant_id)
                .bind(key_id)
                .bind(tool)
                .bind(start)
                .bind(tally.calls)
                .bind(tally.denied)
                .bind(tally.errors)
                .bind(tally.durations.encode());
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Counts one day and writes its rollups, unless another run claimed the
/// day first. Counting reads outside the write transaction (a day's raw rows
/// no longer change), so the write lock is held only for the inserts.
async fn roll_up_day(pool: &AnyPool, day: i64, now: OffsetDateTime) -> DomainResult<Option<i64>> {
    let tallies = count_calls(pool, day, day + DAY).await?;
    let calls: i64 = tallies.iter().map(|(_, t)| t.calls).sum();
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO audit_rollup_days (day, rolled_at, calls) VALUES ($1, $2, $3) \
         ON CONFLICT (day) DO NOTHING",
    )
    .bind(day)
    .bind(UnixTime::from(now))
    .bind(calls)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    // Its hourly rollups stay a day longer: a reader that looked before
    // this commit still finds the day in them.
    write_tallies(&mut tx, (&DAYS, day), &tallies).await?;
    tx.commit().await?;
    Ok(Some(calls))
}

/// Rolls up the complete hours with tool calls after the last daily rollup
/// or in the last [`HOURS_KEPT`] hours, oldest first, at most
/// [`HOURS_PER_TICK`]. Writing an hour twice writes the same counts, so
/// instances running this at once need no claim.
#[tracing::instrument(skip(pool))]
pub async fn roll_up_hours(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<usize> {
    let complete_before = (UnixTime::from(now).secs() - GRACE_SECS).div_euclid(HOUR) * HOUR;
    let kept_from = complete_before - HOURS_KEPT * HOUR;
    let frontiers = Frontiers::read(pool).await?;
    let days_until = match frontiers.days {
        Some(day) => day,
        None => match first_call_from(pool, i64::MIN, complete_before).await? {
            Some(at) => day_of(at),
            None => return Ok(0),
        },
    };
    // An hour stays a day past both its day's rollup and the kept window: a
    // reader that looked at the frontiers before this delete still finds it.
    sqlx::query("DELETE FROM audit_rollup_hours WHERE hour < $1")
        .bind(days_until.min(kept_from) - DAY)
        .execute(pool)
        .await?;
    // The hours of a day rolled up in the same tick as its last hour (and,
    // after an upgrade or outage, those of the last week) are still to do.
    let from = frontiers
        .hours
        .unwrap_or(i64::MIN)
        .max(days_until.min(kept_from));
    roll_up_periods(pool, &HOURS, (from, complete_before), HOURS_PER_TICK).await
}

/// Rolls up the periods with tool calls at `[from, before)`, oldest first,
/// at most `limit`.
async fn roll_up_periods(
    pool: &AnyPool,
    rollups: &Rollups,
    (mut from, before): (i64, i64),
    limit: usize,
) -> DomainResult<usize> {
    let mut rolled = 0;
    while rolled < limit {
        // Periods without calls have nothing to write: skip to the next call.
        let Some(at) = first_call_from(pool, from, before).await? else {
            break;
        };
        let start = at.div_euclid(rollups.len) * rollups.len;
        let tallies = count_calls(pool, start, start + rollups.len).await?;
        // One transaction: readers see the whole period or none of it.
        let mut tx = pool.begin().await?;
        write_tallies(&mut tx, (rollups, start), &tallies).await?;
        tx.commit().await?;
        rolled += 1;
        from = start + rollups.len;
    }
    Ok(rolled)
}

/// When the first tool call at `[from, before)` was made (one indexed lookup).
async fn first_call_from(pool: &AnyPool, from: i64, before: i64) -> DomainResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT at FROM audit_events WHERE action = 'tool.call' AND at >= $1 AND at < $2 \
         ORDER BY at LIMIT 1",
    )
    .bind(from)
    .bind(before)
    .fetch_optional(pool)
    .await?)
}
