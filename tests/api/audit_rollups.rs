//! Daily rollups of tool calls and audit retention: `/usage` and the key page
//! read rollups plus today's raw rows and must say exactly what counting the
//! raw rows says; retention deletes only days already rolled up.

use std::collections::BTreeMap;

use keysmith::domain::{audit::latency_histogram::Histogram, audit::rollups};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin::{admin_user, browser, sign_in},
    both_engines,
    helpers::{Engine, TestApp, expect_json},
};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One raw tool call as the verification layer writes it.
struct Call<'a> {
    tool: &'a str,
    allowed: bool,
    status: Option<i64>,
    duration_us: Option<i64>,
}

async fn insert_call(app: &TestApp, key_id: &str, call: &Call<'_>, at: i64) {
    let mut conn = app.state.pool().acquire().await.expect("a connection");
    insert_call_on(&mut conn, app, key_id, call, at).await;
}

async fn insert_call_on(
    conn: &mut sqlx::AnyConnection,
    app: &TestApp,
    key_id: &str,
    call: &Call<'_>,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at, status, duration_us) \
         VALUES ($1, $2, NULL, 'key', 'tool.call', $3, $4, $5, NULL, $6, $7, $8)",
    )
    .bind(&app.tenant.id)
    .bind(key_id)
    .bind(call.tool)
    .bind(if call.allowed { "allowed" } else { "denied" })
    .bind(if call.allowed { "valid" } else { "tool_not_allowed" })
    .bind(at)
    .bind(call.status)
    .bind(call.duration_us)
    .execute(conn)
    .await
    .expect("insert call");
}

/// A mix of calls every few hours over the last `days` days and today so
/// far: every outcome, 2xx/4xx/5xx/no status, durations on bucket edges.
/// One transaction: the server's own scheduler tick may run meanwhile, and
/// must not roll up a day half seeded.
async fn seed_calls(app: &TestApp, key_id: &str, days: i64) {
    let mut tx = app.state.pool().begin().await.expect("a transaction");
    let statuses = [Some(200), Some(404), Some(500), Some(503), None, Some(200)];
    let durations = [
        Some(0),
        Some(1),
        Some(4),
        Some(5),
        Some(7),
        Some(8),
        Some(1023),
        Some(1024),
        Some(90_000),
        None,
        Some(2_500_000),
    ];
    let tools = ["search", "files/read", "echo"];
    let now = app.now().unix_timestamp();
    let mut i = 0;
    let mut at = rollups::day_of(now) - days * DAY;
    while at <= now {
        let call = Call {
            tool: tools[i % tools.len()],
            allowed: i % 5 != 0,
            status: statuses[i % statuses.len()],
            duration_us: durations[i % durations.len()],
        };
        insert_call_on(&mut tx, app, key_id, &call, at).await;
        i += 1;
        at += 5 * HOUR + 7;
    }
    tx.commit().await.expect("seeded");
}

/// Calls by `key_id` every 7 s over the `secs` seconds up to now: every
/// outcome, status and several duration buckets, two tools. One
/// transaction, as in [`seed_calls`].
async fn seed_minutes(app: &TestApp, key_id: &str, secs: i64) {
    let mut tx = app.state.pool().begin().await.expect("a transaction");
    let now = app.now().unix_timestamp();
    for (i, ago) in (0..secs).rev().step_by(7).enumerate() {
        let call = Call {
            tool: ["search", "echo"][i % 2],
            allowed: i % 3 != 0,
            status: [Some(200), Some(502), None, Some(404)][i % 4],
            duration_us: [Some(3), Some(900), None, Some(70_000), Some(1_024)][i % 5],
        };
        insert_call_on(&mut tx, app, key_id, &call, now - ago).await;
    }
    tx.commit().await.expect("seeded");
}

/// What counting the raw rows since `since` says, as `/usage` lists it.
async fn raw_usage(app: &TestApp, key_id: &str, since: i64) -> Value {
    let rows: Vec<(String, String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT tool, outcome, status, duration_us FROM audit_events \
         WHERE key_id = $1 AND action = 'tool.call' AND at >= $2",
    )
    .bind(key_id)
    .bind(since)
    .fetch_all(app.state.pool())
    .await
    .expect("raw rows");
    let mut tools: BTreeMap<String, (i64, i64, i64, Histogram)> = BTreeMap::new();
    for (tool, outcome, status, duration) in rows {
        let entry = tools.entry(tool).or_default();
        entry.0 += 1;
        entry.1 += i64::from(outcome != "allowed");
        entry.2 += i64::from(status.is_none_or(|s| s >= 500));
        if let Some(us) = duration {
            entry.3.record(us);
        }
    }
    let mut list: Vec<Value> = tools
        .into_iter()
        .map(|(tool, (calls, denied, errors, durations))| {
            json!({"tool": tool, "calls": calls, "denied": denied, "errors": errors,
                   "p50_us": durations.quantile(0.5), "p99_us": durations.quantile(0.99)})
        })
        .collect();
    list.sort_by_key(|t| -t["calls"].as_i64().expect("calls"));
    Value::Array(list)
}

async fn usage(app: &TestApp, key_id: &str, days: i64) -> Value {
    let path = format!("/api/v1/tenants/acme/keys/{key_id}/usage?days={days}");
    // A fresh management key: the clock may have moved past the first one's expiry.
    let admin = app.management_key(&app.tenant).await;
    expect_json(app.get_as(&admin, &path).await, StatusCode::OK).await["tools"].clone()
}

fn window_start(app: &TestApp, days: i64) -> i64 {
    keysmith::domain::audit::usage::window_start(app.now(), days)
}

async fn raw_calls(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call'")
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

/// Moves the clock on to the next UTC noon, so that no test step sits in
/// the minutes after midnight when yesterday is not rolled up yet.
fn move_to_noon(app: &TestApp) {
    let now = app.now().unix_timestamp();
    let noon = rollups::day_of(now) + DAY + 12 * HOUR;
    app.clock.advance(time::Duration::seconds(noon - now));
}

async fn new_key(app: &TestApp, owner: &str) -> String {
    move_to_noon(app);
    let su = app.create_service_user(owner).await;
    app.create_key(&su, json!({})).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Makes inserting rollups fail, as a full disk or a broken constraint would.
async fn break_rollup_inserts(app: &TestApp) {
    let statements = match app.db.engine {
        Engine::Sqlite => vec![
            "CREATE TRIGGER no_rollups BEFORE INSERT ON audit_rollups BEGIN SELECT RAISE(ABORT, 'sabotaged'); END",
        ],
        Engine::Postgres => vec![
            "CREATE FUNCTION no_rollups() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'sabotaged'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER no_rollups BEFORE INSERT ON audit_rollups FOR EACH ROW EXECUTE FUNCTION no_rollups()",
        ],
    };
    for sql in statements {
        sqlx::query(sql)
            .execute(app.state.pool())
            .await
            .expect("sabotage");
    }
}

async fn repair_rollup_inserts(app: &TestApp) {
    let sql = match app.db.engine {
        Engine::Sqlite => "DROP TRIGGER no_rollups",
        Engine::Postgres => "DROP TRIGGER no_rollups ON audit_rollups",
    };
    sqlx::query(sql)
        .execute(app.state.pool())
        .await
        .expect("repair");
}

both_engines! {
    async fn usage_from_rollups_is_what_raw_counting_says_and_outlives_retention(app: TestApp) {
        let key = new_key(&app, "agent").await;
        let other = new_key(&app, "other-agent").await;
        seed_calls(&app, &key, 6).await;
        seed_calls(&app, &other, 2).await;
        let before = usage(&app, &key, 7).await;
        assert_eq!(before, raw_usage(&app, &key, window_start(&app, 7)).await, "all raw");
        assert!(before.as_array().expect("tools").len() == 3, "{before}");

        app.tick().await;
        let rolled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_rollup_days")
            .fetch_one(app.state.pool()).await.expect("days");
        assert_eq!(rolled, 6, "the six complete days, not today");
        let hours: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT hour) FROM audit_rollup_hours WHERE hour >= $1")
            .bind(window_start(&app, 1)).fetch_one(app.state.pool()).await.expect("hours");
        assert!(hours >= 2, "today's complete hours with calls are rolled up: {hours}");
        for days in [1, 2, 3, 7, 30] {
            let expected = raw_usage(&app, &key, window_start(&app, days)).await;
            assert_eq!(usage(&app, &key, days).await, expected, "window of {days} days");
        }
        assert_eq!(usage(&app, &other, 7).await, raw_usage(&app, &other, window_start(&app, 7)).await);

        // Past midnight: yesterday is read from its hours until its day is
        // rolled up, then from its day.
        app.clock.advance(time::Duration::hours(12) + time::Duration::minutes(2));
        let expected = raw_usage(&app, &key, window_start(&app, 3)).await;
        assert_eq!(usage(&app, &key, 3).await, expected, "before the day's rollup");
        app.clock.advance(time::Duration::minutes(5));
        app.tick().await;
        assert_eq!(usage(&app, &key, 3).await, expected, "after it");

        // A hundred days later every raw row is past retention and gone;
        // the rollups still tell the same story.
        app.clock.advance(time::Duration::days(100));
        app.tick().await;
        assert_eq!(raw_calls(&app).await, 0, "raw calls purged");
        assert_eq!(usage(&app, &key, 365).await, before, "kept beyond retention");
        assert_eq!(usage(&app, &key, 30).await, json!([]), "and outside a short window");
    }

    async fn the_key_page_histogram_reads_the_rollups(app: TestApp) {
        let key = new_key(&app, "agent").await;
        for (tool, ago) in [("search", 3 * DAY), ("search", 2 * DAY), ("search", 0), ("echo", DAY)] {
            let call = Call { tool, allowed: true, status: Some(200), duration_us: Some(1000) };
            insert_call(&app, &key, &call, app.now().unix_timestamp() - ago).await;
        }
        app.tick().await;
        app.clock.advance(time::Duration::days(2));
        app.tick().await;
        admin_user(&app, "admin@acme.test", keysmith::domain::people::accounts::Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", crate::admin::PASSWORD).await;
        let page = client.get(app.url(&format!("/admin/api-keys/{key}"))).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("3 (0 denied, 0 errors; p50 1.0 ms, p99 1.0 ms)"), "search, from rollups only:\n{page}");
        assert!(page.contains("1 (0 denied, 0 errors"), "echo:\n{page}");
    }

    async fn retention_keeps_raw_rows_of_a_day_not_rolled_up(app: TestApp) {
        let key = new_key(&app, "agent").await;
        let now = app.now().unix_timestamp();
        let call = Call { tool: "search", allowed: true, status: Some(200), duration_us: Some(40) };
        break_rollup_inserts(&app).await;
        for ago in [120 * DAY, 100 * DAY, 95 * DAY] {
            insert_call(&app, &key, &call, now - ago).await;
        }
        let err = keysmith::jobs::tick(&app.state).await.expect_err("the rollup step failed");
        assert!(err.to_string().contains("audit rollups"), "{err}");
        assert_eq!(raw_calls(&app).await, 3, "nothing purged before it is rolled up");

        repair_rollup_inserts(&app).await;
        app.tick().await;
        assert_eq!(raw_calls(&app).await, 0, "rolled up, then purged");
        let tools = usage(&app, &key, 365).await;
        assert_eq!(tools[0]["calls"], 3, "{tools}");
    }

    async fn concurrent_rollups_count_every_call_exactly_once(app: TestApp) {
        let key = new_key(&app, "agent").await;
        seed_calls(&app, &key, 4).await;
        let expected = raw_usage(&app, &key, window_start(&app, 30)).await;
        let mut instances = vec![app.state.clone()];
        for _ in 0..3 {
            instances.push(app.second_instance(&[]).await);
        }
        let runs = instances.iter().map(|state| async {
            let report = rollups::roll_up_due(state.pool(), app.now()).await.expect("days");
            rollups::roll_up_hours(state.pool(), app.now()).await.expect("hours");
            rollups::roll_up_minutes(state.pool(), app.now()).await.expect("minutes");
            report
        });
        let reports = futures_util::future::join_all(runs).await;
        let mut days = 0;
        for report in reports {
            days += report.days;
        }
        // The server's own scheduler may have taken a day first: never more.
        assert!(days <= 4, "each complete day rolled up by one run: {days}");
        let rolled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_rollup_days")
            .fetch_one(app.state.pool()).await.expect("days");
        assert_eq!(rolled, 4);
        let (rolled_calls, raw_before_today): (i64, i64) = (
            sqlx::query_scalar("SELECT CAST(SUM(calls) AS BIGINT) FROM audit_rollups").fetch_one(app.state.pool()).await.expect("sum"),
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call' AND at < $1")
                .bind(window_start(&app, 1)).fetch_one(app.state.pool()).await.expect("count"),
        );
        assert_eq!(rolled_calls, raw_before_today);
        let day_calls: i64 = sqlx::query_scalar("SELECT CAST(SUM(calls) AS BIGINT) FROM audit_rollup_days")
            .fetch_one(app.state.pool()).await.expect("sum");
        assert_eq!(day_calls, raw_before_today);
        assert_eq!(usage(&app, &key, 30).await, expected);
    }

    async fn the_current_hour_is_counted_from_minute_rollups(app: TestApp) {
        let key = new_key(&app, "agent").await;
        let other = new_key(&app, "other-agent").await;
        app.clock.advance(time::Duration::minutes(40));
        seed_minutes(&app, &key, 40 * 60).await;
        seed_minutes(&app, &other, 10 * 60).await;
        let expected = raw_usage(&app, &key, window_start(&app, 1)).await;
        app.tick().await;
        let minutes = rollups::Frontiers::read(app.state.pool()).await.expect("frontiers").minutes.expect("rolled up");
        let now = app.now().unix_timestamp();
        assert!((now - 120..=now - 30).contains(&minutes), "every minute over 30 s old: {}", now - minutes);
        assert_eq!(usage(&app, &key, 1).await, expected);
        assert_eq!(usage(&app, &other, 1).await, raw_usage(&app, &other, window_start(&app, 1)).await);

        // Only the minutes after the frontier are read raw: without the raw
        // rows before it, the counts stay.
        let deleted = sqlx::query("DELETE FROM audit_events WHERE key_id = $1 AND at < $2")
            .bind(&key).bind(minutes).execute(app.state.pool()).await.expect("delete").rows_affected();
        assert!(deleted > 100, "{deleted}");
        assert_eq!(usage(&app, &key, 1).await, expected, "from the minute rollups");

        // Once the hourly rollups are an hour past them, minutes are dropped.
        app.clock.advance(time::Duration::hours(1));
        let call = Call { tool: "search", allowed: true, status: Some(200), duration_us: Some(5) };
        insert_call(&app, &key, &call, app.now().unix_timestamp()).await;
        app.clock.advance(time::Duration::minutes(90));
        app.tick().await;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_rollup_minutes WHERE minute < $1")
            .bind(minutes).fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(left, 0, "minutes of the first hour dropped");
    }

    async fn a_call_written_after_its_minute_was_rolled_up_counts_with_its_hour(app: TestApp) {
        let key = new_key(&app, "agent").await;
        app.clock.advance(time::Duration::minutes(30));
        seed_minutes(&app, &key, 30 * 60).await;
        app.tick().await;
        let before = usage(&app, &key, 1).await;
        // Its batch retried while the database was away: stamped 20 minutes
        // ago, written now.
        let late = Call { tool: "late-tool", allowed: true, status: Some(200), duration_us: Some(10) };
        insert_call(&app, &key, &late, app.now().unix_timestamp() - 20 * 60).await;
        assert_eq!(usage(&app, &key, 1).await, before, "not in its minute's rollup");

        app.clock.advance(time::Duration::minutes(36));
        app.tick().await;
        let after = usage(&app, &key, 1).await;
        assert_eq!(after, raw_usage(&app, &key, window_start(&app, 1)).await, "counted once its hour is rolled up");
        assert!(after.to_string().contains("late-tool"), "{after}");
    }

    async fn retention_deletes_in_batches_until_done(app: TestApp) {
        let key = new_key(&app, "agent").await;
        let old = app.now().unix_timestamp() - 120 * DAY;
        // More rows than one delete batch takes (1,000), spread over two days.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) \
             INSERT INTO audit_events (tenant_id, key_id, actor, action, tool, outcome, at, status, duration_us) \
             SELECT $1, $2, 'key', 'tool.call', 'search', 'allowed', $3 + i * 60, 200, i FROM n",
        )
        .bind(&app.tenant.id).bind(&key).bind(old)
        .execute(app.state.pool()).await.expect("seed");
        let recent = Call { tool: "search", allowed: true, status: Some(200), duration_us: Some(1) };
        insert_call(&app, &key, &recent, old + 110 * DAY).await;
        app.tick().await;
        assert_eq!(raw_calls(&app).await, 1, "every old call went, the recent one stayed");
        assert_eq!(usage(&app, &key, 365).await[0]["calls"], 2501);
    }
}
