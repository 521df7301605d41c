//! A key's tool usage over the last days: daily rollups for the days the
//! scheduler has rolled up, hourly ones for the complete hours since, minute
//! ones for the complete minutes since, raw audit rows for the rest (the
//! last minute or two). Reads a few hundred rollup rows and a minute or two
//! of raw rows, however many raw rows the table holds.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::{KeyId, TenantId, UnixTime};
use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{
        audit::latency_histogram::Histogram,
        audit::rollups::{DAY, Frontiers, Tally, calls_by_bucket_sql, day_of},
    },
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolUsage {
    pub tool: String,
    pub calls: i64,
    pub denied: i64,
    /// Calls the upstream answered with a 5xx, or not at all.
    pub errors: i64,
    /// Median duration in µs (within 25 %: read from a log-bucket
    /// histogram); absent when no call recorded one.
    pub p50_us: Option<i64>,
    pub p99_us: Option<i64>,
}

/// The UTC midnight starting a window of `days` days that ends with today.
pub fn window_start(now: OffsetDateTime, days: i64) -> i64 {
    day_of(UnixTime::from(now).secs()) - (days.max(1) - 1) * DAY
}

/// Adds the rollups of `table` whose `column` is in `[from, until)`.
async fn add_rollups(
    pool: &AnyPool,
    tallies: &mut BTreeMap<String, Tally>,
    (tenant_id, key_id): (&TenantId, &KeyId),
    (table, column): (&str, &str),
    (from, until): (i64, i64),
) -> DomainResult<()> {
    let sql = format!(
        "SELECT tool, calls, denied, errors, durations FROM {table} \
         WHERE tenant_id = $1 AND key_id = $2 AND {column} >= $3 AND {column} < $4"
    );
    let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(key_id)
        .bind(from)
        .bind(until)
        .fetch_all(pool)
        .await?;
    for (tool, calls, denied, errors, durations) in rows {
        let durations =
            Histogram::decode(&durations).map_err(|err| DomainError::Internal(err.into()))?;
        let period = Tally {
            calls,
            denied,
            errors,
            durations,
        };
        tallies.entry(tool).or_default().merge(&period);
    }
    Ok(())
}

/// Calls per tool by a key since `since` (a UTC midnight, see
/// [`window_start`]), busiest first.
#[tracing::instrument(skip(pool))]
pub async fn tool_usage(
    pool: &AnyPool,
    tenant_id: &TenantId,
    key_id: &KeyId,
    since: i64,
) -> DomainResult<Vec<ToolUsage>> {
    let split = Frontiers::read(pool).await?.split(since);
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let periods = [
        ("audit_rollups", "day", split.days),
        ("audit_rollup_hours", "hour", split.hours),
        ("audit_rollup_minutes", "minute", split.minutes),
    ];
    for (table, column, (from, until)) in periods {
        if from < until {
            add_rollups(
                pool,
                &mut tallies,
                (tenant_id, key_id),
                (table, column),
                (from, until),
            )
            .await?;
        }
    }
    let sql = calls_by_bucket_sql("tool", "tenant_id = $1 AND key_id = $2 AND at >= $3");
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(key_id)
        .bind(split.raw_from)
        .fetch_all(pool)
        .await?;
    for (tool, bucket, calls, denied, errors) in rows {
        tallies
            .entry(tool)
            .or_default()
            .add_bucket(bucket, calls, denied, errors);
    }
    let mut usage: Vec<ToolUsage> = tallies
        .into_iter()
        .map(|(tool, t)| ToolUsage {
            tool,
            calls: t.calls,
            denied: t.denied,
            errors: t.errors,
            p50_us: t.durations.quantile(0.5),
            p99_us: t.durations.quantile(0.99),
        })
        .collect();
    usage.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.tool.cmp(&b.tool)));
    Ok(usage)
}
