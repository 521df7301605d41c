//! The admin key page (audit trail, owner emails, 30-day tool histogram) of
//! a key with 10 million audit rows over 90 days, rolled up by the
//! scheduler's step, served by the real app on SQLite and fetched over HTTP
//! by a signed-in admin. `KEYSMITH_BENCH_AUDIT_ROWS` sets the row count
//! (a smaller one for a smoke run).
//!
//! A third key makes `KEYSMITH_BENCH_HOUR_ROWS` calls (1 million unless
//! set: 280 a second) in the hour up to the run, the page a busy agent's
//! owner looks at.
//!
//! Baseline measured in the same run: the same page for a key with 100
//! audit rows in the same database. The histogram reads at most 30 days of
//! daily, hourly and minute rollups plus the last minute or two raw, so the
//! page must grow neither with the table nor with the rate of calls.

mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith::{
    db::Db,
    domain::{TenantId, audit::rollups},
};

const DEFAULT_ROWS: i64 = 10_000_000;
const SMALL_ROWS: i64 = 100;
/// Rows per seeding statement: one transaction of 10M rows would leave a
/// write-ahead log the size of the table.
const SEED_CHUNK: i64 = 1_000_000;
const SPAN_SECS: i64 = 90 * 86_400;
const DEFAULT_HOUR_ROWS: i64 = 1_000_000;
const BIG_KEY: &str = "bigkey0000000001";
const BUSY_KEY: &str = "busykey000000001";
const SMALL_KEY: &str = "smallkey00000001";

/// Rows from `var`, or `default`.
fn rows_from_env(var: &str, default: i64) -> i64 {
    std::env::var(var)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{var}: a number of rows"))
        })
        .unwrap_or(default)
}

/// Tool calls by one key, evenly over the `span` seconds up to `end`.
struct Calls<'a> {
    key_id: &'a str,
    rows: i64,
    end: i64,
    span: i64,
}

/// `calls`, in time order as the audit writer appends them: five tools, 2 %
/// denied, 1 % upstream errors, durations spread over 0.2–50 ms.
async fn seed_calls(db: &Db, tenant_id: &TenantId, owner: &str, calls: Calls<'_>) {
    let Calls {
        key_id,
        rows,
        end,
        span,
    } = calls;
    let mut from = 0;
    while from < rows {
        let to = (from + SEED_CHUNK).min(rows);
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $2) \
             INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, at, status, duration_us) \
             SELECT $3, $4, $5, 'key', 'tool.call', \
                    CASE i % 5 WHEN 0 THEN 'search' WHEN 1 THEN 'files/read' WHEN 2 THEN 'files/write' WHEN 3 THEN 'echo' ELSE 'deploy' END, \
                    CASE WHEN i % 50 = 0 THEN 'denied' ELSE 'allowed' END, \
                    CASE WHEN i % 50 = 0 THEN 'tool_not_allowed' ELSE 'valid' END, \
                    $6 - $7 + (i * $7) / $8, \
                    CASE WHEN i % 50 = 0 THEN 403 WHEN i % 97 = 0 THEN 502 ELSE 200 END, \
                    200 + (i * 7919) % 50000 \
             FROM n",
        )
        .bind(from)
        .bind(to)
        .bind(tenant_id)
        .bind(key_id)
        .bind(owner)
        .bind(end)
        .bind(span)
        .bind(rows)
        .execute(&db.pool)
        .await
        .expect("seed audit rows");
        from = to;
    }
}

async fn seed(db: &Db, (rows, hour_rows): (i64, i64)) -> String {
    let (tenant, owners) = support::tenant_with_owners(db, "busy", &["agent"]).await;
    let owner = &owners[0].id;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for key in [BIG_KEY, SMALL_KEY, BUSY_KEY] {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, service_user_id, name, prefix, secret_hash, pepper_version, hint, status, scopes, created_at, created_by, expires_at) \
             VALUES ($1, $2, $3, $1, 'ks', hex(randomblob(32)), 1, 'abcd', 'active', '[]', $4, 'system', $5)",
        )
        .bind(key)
        .bind(&tenant.id)
        .bind(owner)
        .bind(now - SPAN_SECS)
        .bind(now + SPAN_SECS)
        .execute(&db.pool)
        .await
        .expect("key");
    }
    // The calls run up to the run: the page reads the last minute or two
    // raw, and the rest from rollups.
    let days = |key_id, rows| Calls {
        key_id,
        rows,
        end: now,
        span: SPAN_SECS,
    };
    seed_calls(db, &tenant.id, owner.as_str(), days(BIG_KEY, rows)).await;
    seed_calls(db, &tenant.id, owner.as_str(), days(SMALL_KEY, SMALL_ROWS)).await;
    let last_hour = Calls {
        key_id: BUSY_KEY,
        rows: hour_rows,
        end: now,
        span: rollups::HOUR,
    };
    seed_calls(db, &tenant.id, owner.as_str(), last_hour).await;
    // What the scheduler does tick after tick: every complete day rolled
    // up, then today's complete hours, then the complete minutes since.
    let now = time::OffsetDateTime::now_utc();
    while rollups::roll_up_due(&db.pool, now)
        .await
        .expect("roll up")
        .days
        > 0
    {}
    // Every complete hour and minute, as the scheduler leaves them once
    // caught up (one call rolls at most a tick's worth: the raw part of the
    // page would otherwise depend on the time of day the bench runs).
    while rollups::roll_up_hours(&db.pool, now)
        .await
        .expect("roll up hours")
        > 0
    {}
    while rollups::roll_up_minutes(&db.pool, now)
        .await
        .expect("roll up minutes")
        > 0
    {}
    let mut conn = db.pool.acquire().await.expect("connection");
    for sql in ["PRAGMA analysis_limit = 1000", "ANALYZE"] {
        sqlx::query(sql).execute(&mut *conn).await.expect("analyze");
    }
    support::grant_admin(db, &[&tenant]).await;
    tenant.slug.to_string()
}

fn key_page(c: &mut Criterion) {
    let rt = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    let config = support::config(&dir);
    let rows = rows_from_env("KEYSMITH_BENCH_AUDIT_ROWS", DEFAULT_ROWS);
    let hour_rows = rows_from_env("KEYSMITH_BENCH_HOUR_ROWS", DEFAULT_HOUR_ROWS);
    let (base, client, slug) = rt.block_on(async {
        let db = support::open(&config).await;
        let slug = seed(&db, (rows, hour_rows)).await;
        let (base, client) = support::serve_signed_in(db, &config).await;
        (base, client, slug)
    });

    let fetch = |key: &str| {
        support::fetch(
            &client,
            format!("{base}/admin/api-keys/{key}?tenant={slug}"),
        )
    };
    let mut group = c.benchmark_group("admin_key_page");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("key_with_100_audit_rows", |b| {
        b.to_async(&rt).iter(|| fetch(SMALL_KEY))
    });
    group.bench_function("key_with_many_audit_rows", |b| {
        b.to_async(&rt).iter(|| fetch(BIG_KEY))
    });
    group.bench_function("key_with_a_busy_hour", |b| {
        b.to_async(&rt).iter(|| fetch(BUSY_KEY))
    });
    group.finish();
    // For the report: how many rows "many" and "busy" were in this run.
    let dir = std::path::Path::new("target/criterion/admin_key_page");
    std::fs::create_dir_all(dir).expect("criterion dir");
    std::fs::write(dir.join("rows.txt"), rows.to_string()).expect("row count");
    std::fs::write(dir.join("hour_rows.txt"), hour_rows.to_string()).expect("row count");
}

criterion_group!(benches, key_page);
criterion_main!(benches);
