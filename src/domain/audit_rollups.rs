//! Daily rollups of tool calls per key and tool (calls, denied, errors and a
//! duration histogram), written by the scheduler for complete UTC days and
//! kept after retention deletes the raw rows. A day is claimed and written
//! in one transaction, so it is counted exactly once however many instances
//! run the scheduler.

use std::collections::{BTreeMap, HashSet};

use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::UnixTime;
use crate::{
    domain::durations::{self, Histogram},
    error::AppResult,
};

pub const DAY: i64 = 86_400;
/// A day is rolled up this long after it ends: events stamped just before
/// midnight may still be in the audit writer's queue.
const GRACE_SECS: i64 = 300;
/// Days rolled up per tick: after a long outage (or on upgrade) each tick
/// reads a bounded amount; retention waits for the days still to do.
const DAYS_PER_TICK: usize = 10;
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
        bucket = durations::bucket_sql(),
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
pub async fn roll_up_due(pool: &AnyPool, now: OffsetDateTime) -> AppResult<RollupReport> {
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
pub async fn unrolled_days(pool: &AnyPool, before: i64, limit: usize) -> AppResult<Vec<i64>> {
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
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT at FROM audit_events WHERE action = 'tool.call' AND at >= $1 AND at < $2 \
             ORDER BY at LIMIT 1",
        )
        .bind(from)
        .bind(before)
        .fetch_optional(pool)
        .await?;
        let Some(at) = next else { break };
        let day = day_of(at);
        if !rolled.contains(&day) {
            days.push(day);
        }
        from = day + DAY;
    }
    Ok(days)
}

type Group = (String, String, String);

/// Counts one day and writes its rollups, unless another run claimed the
/// day first. Counting reads outside the write transaction (a day's raw rows
/// no longer change), so the write lock is held only for the inserts.
async fn roll_up_day(pool: &AnyPool, day: i64, now: OffsetDateTime) -> AppResult<Option<i64>> {
    let sql = calls_by_bucket_sql(
        "tenant_id, key_id, tool",
        "key_id IS NOT NULL AND at >= $1 AND at < $2",
    );
    let rows: Vec<(String, String, String, i64, i64, i64, i64)> = sqlx::query_as(&sql)
        .bind(day)
        .bind(day + DAY)
        .fetch_all(pool)
        .await?;
    let mut tallies: BTreeMap<Group, Tally> = BTreeMap::new();
    for (tenant_id, key_id, tool, bucket, calls, denied, errors) in rows {
        tallies
            .entry((tenant_id, key_id, tool))
            .or_default()
            .add_bucket(bucket, calls, denied, errors);
    }
    let calls: i64 = tallies.values().map(|t| t.calls).sum();

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
    let tallies: Vec<(Group, Tally)> = tallies.into_iter().collect();
    for chunk in tallies.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = i * 8;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_rollups (tenant_id, key_id, tool, day, calls, denied, errors, durations) VALUES {}",
            values.join(", ")
        );
        let mut insert = sqlx::query(&sql);
        for ((tenant_id, key_id, tool), tally) in chunk {
            insert = insert
                .bind(tenant_id)
                .bind(key_id)
                .bind(tool)
                .bind(day)
                .bind(tally.calls)
                .bind(tally.denied)
                .bind(tally.errors)
                .bind(tally.durations.encode());
        }
        insert.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Some(calls))
}
