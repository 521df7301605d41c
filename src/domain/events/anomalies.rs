//! Unusual usage: a key whose calls in the current hour exceed ten times its
//! usual (the 95th percentile of its hourly calls over the 7 days before,
//! empty hours counted) and a floor, tells its owner — once a day per key,
//! with the tools it called most. What runaway or hijacked agents look like.
//! The history comes from the hourly rollups, the current hour from the
//! minute ones; only the minutes they have not reached yet (the last one or
//! two, or more if they lag) are counted raw.

use crate::domain::{KeyId, TenantId, UnixTime};
use std::collections::HashMap;

use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::error::DomainResult;
use crate::domain::{
    audit::rollups::{self, HOURS_KEPT},
    events::notice::{AnomalyNotice, Notice},
    events::outbox::{self, NewMail},
};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Hours of history that define "usual" (all in the hourly rollups).
const HISTORY_HOURS: i64 = HOURS_KEPT;
/// How many times the usual an hour must reach.
const FACTOR: i64 = 10;
/// Fewer calls than this in an hour are never unusual, whatever the history.
pub const FLOOR: i64 = 100;

/// The 95th percentile of `hourly` (nearest rank), empty hours included.
fn p95(mut hourly: Vec<i64>) -> i64 {
    hourly.sort_unstable();
    let rank = (hourly.len() * 95).div_ceil(100).max(1);
    hourly.get(rank - 1).copied().unwrap_or(0)
}

/// Whether `calls` this hour are unusual against the hours before.
pub fn is_unusual(calls: i64, history: Vec<i64>) -> (bool, i64) {
    let usual = p95(history);
    (calls > (FACTOR * usual).max(FLOOR), usual)
}

#[derive(sqlx::FromRow)]
struct KeyInfo {
    tenant_id: TenantId,
    name: String,
    hint: String,
    service_user: String,
    owner_email: Option<String>,
    tenant_name: String,
}

/// Queues an anomaly mail for every key unusually busy in the current hour;
/// returns how many were new (one per key and day, whatever the ticks).
#[tracing::instrument(skip_all)]
pub async fn enqueue_due(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<u64> {
    let now_unix = UnixTime::from(now);
    let this_hour = now_unix.secs().div_euclid(HOUR);
    let history_from = (this_hour - HISTORY_HOURS) * HOUR;
    // Hours, then minutes, are rolled up oldest first: those before each
    // frontier are in its rollups, the rest (the last minute or two, or more
    // if the rollups lag) are counted raw. Only the hourly rollups are kept
    // for the whole history, whatever the daily ones hold.
    let frontiers = rollups::Frontiers::read(pool).await?;
    let hours_until = frontiers.hours.map_or(history_from, |hour| {
        hour.clamp(history_from, this_hour * HOUR)
    });
    let raw_from = frontiers
        .minutes
        .map_or(hours_until, |minute| minute.max(hours_until));
    let mut rows: Vec<(KeyId, i64, i64)> = Vec::new();
    for (table, column, from, until) in [
        ("audit_rollup_hours", "hour", history_from, hours_until),
        ("audit_rollup_minutes", "minute", hours_until, raw_from),
    ] {
        let sql = format!(
            "SELECT key_id, {column} / 3600 AS hour, CAST(SUM(calls - denied) AS BIGINT) \
             FROM {table} WHERE {column} >= $1 AND {column} < $2 GROUP BY key_id, {column} / 3600"
        );
        rows.extend(
            sqlx::query_as::<_, (KeyId, i64, i64)>(&sql)
                .bind(from)
                .bind(until)
                .fetch_all(pool)
                .await?,
        );
    }
    rows.extend(
        sqlx::query_as::<_, (KeyId, i64, i64)>(
            "SELECT key_id, at / 3600 AS hour, COUNT(*) FROM audit_events \
             WHERE action = 'tool.call' AND outcome = 'allowed' AND key_id IS NOT NULL \
             AND at >= $1 GROUP BY key_id, at / 3600",
        )
        .bind(raw_from)
        .fetch_all(pool)
        .await?,
    );
    let mut per_key: HashMap<KeyId, HashMap<i64, i64>> = HashMap::new();
    for (key_id, hour, calls) in rows {
        *per_key.entry(key_id).or_default().entry(hour).or_default() += calls;
    }
    let mut enqueued = 0;
    for (key_id, hours) in per_key {
        let calls = hours.get(&this_hour).copied().unwrap_or(0);
        let history = (this_hour - HISTORY_HOURS..this_hour)
            .map(|h| hours.get(&h).copied().unwrap_or(0))
            .collect();
        let (unusual, usual) = is_unusual(calls, history);
        let busy = Busy {
            key_id: &key_id,
            hour: this_hour,
            calls,
            usual,
        };
        if unusual && tell_owner(pool, busy, raw_from, now).await? {
            enqueued += 1;
        }
    }
    Ok(enqueued)
}

/// A key unusually busy in `hour` (hours since the epoch).
struct Busy<'a> {
    key_id: &'a KeyId,
    hour: i64,
    calls: i64,
    usual: i64,
}

/// The tools `key_id` called most since `from`: minute rollups up to
/// `raw_from`, raw rows after.
async fn top_tools(
    pool: &AnyPool,
    key_id: &KeyId,
    from: i64,
    raw_from: i64,
) -> DomainResult<Vec<(String, i64)>> {
    let mut calls: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tool, CAST(SUM(calls) AS BIGINT) FROM audit_rollup_minutes \
         WHERE key_id = $1 AND minute >= $2 AND minute < $3 GROUP BY tool",
    )
    .bind(key_id)
    .bind(from)
    .bind(raw_from)
    .fetch_all(pool)
    .await?;
    calls.extend(
        sqlx::query_as::<_, (String, i64)>(
            "SELECT tool, COUNT(*) FROM audit_events \
             WHERE key_id = $1 AND action = 'tool.call' AND at >= $2 AND tool IS NOT NULL \
             GROUP BY tool",
        )
        .bind(key_id)
        .bind(raw_from.max(from))
        .fetch_all(pool)
        .await?,
    );
    let mut per_tool: HashMap<String, i64> = HashMap::new();
    for (tool, n) in calls {
        *per_tool.entry(tool).or_default() += n;
    }
    let mut top: Vec<(String, i64)> = per_tool.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(5);
    Ok(top)
}

async fn tell_owner(
    pool: &AnyPool,
    busy: Busy<'_>,
    raw_from: i64,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let Busy {
        key_id,
        hour,
        calls,
        usual,
    } = busy;
    let info: Option<KeyInfo> = sqlx::query_as(
        "SELECT k.tenant_id, k.name, k.hint, s.name AS service_user, s.owner_email, t.name AS tenant_name \
         FROM api_keys k JOIN service_users s ON s.id = k.service_user_id JOIN tenants t ON t.id = k.tenant_id \
         WHERE k.id = $1",
    )
    .bind(key_id)
    .fetch_optional(pool)
    .await?;
    let Some(info) = info else { return Ok(false) };
    let Some(recipient) = info.owner_email.clone() else {
        return Ok(false);
    };
    let top_tools = top_tools(pool, key_id, hour * HOUR, raw_from).await?;
    let notice = Notice::Anomaly(AnomalyNotice {
        tenant_name: info.tenant_name,
        service_user: info.service_user,
        key_name: info.name,
        key_id: key_id.clone(),
        hint: info.hint,
        hour_start: UnixTime::from_secs(hour * HOUR),
        calls,
        usual_p95: usual,
        top_tools,
    });
    // The day number makes the dedupe key: one email per key and UTC day.
    let mail = NewMail {
        tenant_id: &info.tenant_id,
        key_id,
        threshold_days: Some(UnixTime::from(now).secs().div_euclid(DAY)),
        recipient: &recipient,
        notice: &notice,
    };
    outbox::enqueue(pool, mail, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_means_ten_times_the_p95_and_above_the_floor() {
        let quiet = vec![0; 168];
        assert_eq!(
            is_unusual(100, quiet.clone()),
            (false, 0),
            "the floor itself is not above it"
        );
        assert_eq!(is_unusual(101, quiet), (true, 0));
        let mut busy = vec![20; 168];
        busy[0] = 5000; // one spike in the week does not move the p95
        assert_eq!(is_unusual(200, busy.clone()), (false, 20));
        assert_eq!(is_unusual(201, busy), (true, 20));
    }
}
