//! The scheduler's steps are independent: one bad row is skipped and
//! reported, one failing step does not stop the others.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{Engine, TestApp},
};

/// Makes every `UPDATE` of `table` rows matching `when` fail, as a corrupt
/// row or a broken constraint would.
async fn sabotage(app: &TestApp, table: &str, when: &str) {
    let pool = app.state.pool();
    let statements = match app.db.engine {
        Engine::Sqlite => vec![format!(
            "CREATE TRIGGER sabotage_{table} BEFORE UPDATE ON {table} WHEN {when} BEGIN SELECT RAISE(ABORT, 'sabotaged'); END"
        )],
        Engine::Postgres => vec![
            "CREATE OR REPLACE FUNCTION sabotage() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'sabotaged'; END $$ LANGUAGE plpgsql".to_owned(),
            format!("CREATE TRIGGER sabotage_{table} BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION sabotage()"),
        ],
    };
    for sql in statements {
        sqlx::query(&sql).execute(pool).await.expect("sabotage");
    }
}

async fn repair(app: &TestApp, table: &str) {
    let sql = match app.db.engine {
        Engine::Sqlite => format!("DROP TRIGGER sabotage_{table}"),
        Engine::Postgres => format!("DROP TRIGGER sabotage_{table} ON {table}"),
    };
    sqlx::query(&sql)
        .execute(app.state.pool())
        .await
        .expect("repair");
}

async fn status(app: &TestApp, key_id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM api_keys WHERE id = $1")
        .bind(key_id)
        .fetch_one(app.state.pool())
        .await
        .expect("status")
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = crate::health::metrics_text(app).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

both_engines! {
    async fn one_bad_row_is_skipped_and_the_sweep_goes_on(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let key = app.create_key(&su, json!({"expires_in_days": 1})).await;
            ids.push(key["id"].as_str().expect("id").to_owned());
        }
        sabotage(&app, "api_keys", &format!("OLD.id = '{}'", ids[1])).await;
        app.clock.advance(time::Duration::days(2));
        app.tick().await;
        assert_eq!(status(&app, &ids[0]).await, "expired");
        assert_eq!(status(&app, &ids[1]).await, "active", "the bad row was skipped");
        assert_eq!(status(&app, &ids[2]).await, "expired", "and the sweep went on past it");
        assert_eq!(metric(&app, "keysmith_scheduler_rows_skipped_total").await, 1);

        repair(&app, "api_keys").await;
        app.tick().await;
        assert_eq!(status(&app, &ids[1]).await, "expired", "picked up on the next tick");
    }

    async fn a_failing_step_does_not_stop_the_others(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let expiring = app.create_key(&su, json!({"expires_in_days": 40})).await;
        let doomed = app.create_key(&su, json!({"expires_in_days": 1})).await;
        // Delivery claims rows with an UPDATE of the outbox: make it fail.
        sabotage(&app, "outbox", "1 = 1").await;
        app.clock.advance(time::Duration::days(11));
        let tick = keysmith::jobs::tick(&app.state).await;
        let err = tick.expect_err("the delivery step failed");
        assert!(err.to_string().contains("delivery"), "{err}");
        assert_eq!(status(&app, doomed["id"].as_str().expect("id")).await, "expired", "the sweep ran");
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE key_id = $1")
            .bind(expiring["id"].as_str().expect("id"))
            .fetch_one(app.state.pool())
            .await
            .expect("count");
        assert_eq!(queued, 1, "the 30-day reminder was queued");
        assert_eq!(metric(&app, "keysmith_scheduler_steps_failed_total").await, 1);
        let res = app.client.get(app.url("/healthz")).send().await.expect("healthz");
        assert_eq!(res.status(), StatusCode::OK);
    }
}

both_engines! {
    async fn tool_calls_past_retention_are_purged_and_admin_actions_kept(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        let now = app.now().unix_timestamp();
        let day = 86_400;
        for (action, age_days, tool) in [("tool.call", 100, "old-a"), ("tool.call", 91, "old-b"), ("tool.call", 89, "recent"), ("key.note", 400, "admin")] {
            sqlx::query(
                "INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at) \
                 VALUES ($1, $2, $3, 'system', $4, $5, 'allowed', 'valid', NULL, $6)",
            )
            .bind(&app.tenant.id).bind(key_id).bind(&su).bind(action).bind(tool).bind(now - age_days * day)
            .execute(app.state.pool()).await.expect("insert");
        }
        app.tick().await;
        let left: Vec<String> = sqlx::query_scalar("SELECT tool FROM audit_events WHERE key_id = $1 AND tool IS NOT NULL ORDER BY tool")
            .bind(key_id).fetch_all(app.state.pool()).await.expect("left");
        assert_eq!(left, ["admin", "recent"], "calls older than 90 days went, the rest stayed");
        let creation: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE key_id = $1 AND action = 'key.create'")
            .bind(key_id).fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(creation, 1, "admin actions are kept");
    }
}

/// `n` allowed calls of `tool` by `key_id`, `hours_ago` hours before now.
async fn calls(app: &TestApp, key_id: &str, su: &str, tool: &str, n: i64, hours_ago: i64) {
    calls_in_hours(app, &[key_id], su, (tool, n), &[hours_ago]).await;
}

/// `n` allowed calls of `tool` by each of `keys` in each of the hours
/// `hours_ago`, in one transaction: the server's own scheduler, which may be
/// ticking, rolls up all of them or none.
async fn calls_in_hours(
    app: &TestApp,
    keys: &[&str],
    su: &str,
    (tool, n): (&str, i64),
    hours_ago: &[i64],
) {
    let mut tx = app.state.pool().begin().await.expect("begin");
    for hours_ago in hours_ago {
        for key_id in keys {
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $6) \
                 INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at) \
                 SELECT $1, $2, $3, 'system', 'tool.call', $4, 'allowed', 'valid', NULL, $5 FROM n",
            )
            .bind(&app.tenant.id).bind(key_id).bind(su).bind(tool)
            .bind(app.now().unix_timestamp() - hours_ago * 3600).bind(n)
            .execute(&mut *tx).await.expect("insert");
        }
    }
    tx.commit().await.expect("commit");
}

async fn anomaly_mails(app: &TestApp, key_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE kind = 'anomaly' AND key_id = $1 ORDER BY id",
    )
    .bind(key_id)
    .fetch_all(app.state.pool())
    .await
    .expect("outbox")
}

both_engines! {
    async fn an_unusually_busy_key_tells_its_owner_once_a_day(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let runaway = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        let steady = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        let quiet = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        calls(&app, &runaway, &su, "search", 120, 0).await;
        calls(&app, &runaway, &su, "echo", 30, 0).await;
        // 20 calls in 9 of the past hours: its usual is 20, so 150 is not ten times that.
        let history: Vec<i64> = (1..=9).collect();
        calls_in_hours(&app, &[&steady], &su, ("search", 20), &history).await;
        calls(&app, &steady, &su, "search", 150, 0).await;
        calls(&app, &quiet, &su, "search", 90, 0).await;

        app.tick().await;
        app.tick().await;
        let mails = anomaly_mails(&app, &runaway).await;
        assert_eq!(mails.len(), 1, "one email however many ticks");
        let payload: serde_json::Value = serde_json::from_str(&mails[0]).expect("json");
        assert_eq!(payload["calls"], 150);
        assert_eq!(payload["top_tools"][0], json!(["search", 120]), "{payload}");
        let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE kind = 'anomaly'")
            .fetch_one(app.state.pool())
            .await
            .expect("status");
        assert_eq!(status, "sent", "rendered and delivered");
        assert!(anomaly_mails(&app, &steady).await.is_empty(), "busy, but as busy as usual");
        assert!(anomaly_mails(&app, &quiet).await.is_empty(), "below the floor");

        // The next day, a new burst is told again.
        app.clock.advance(time::Duration::days(1));
        calls(&app, &runaway, &su, "search", 150, 0).await;
        app.tick().await;
        assert_eq!(anomaly_mails(&app, &runaway).await.len(), 2);
    }
}

/// Rolls up the complete days and hours as the scheduler does.
async fn roll_up(app: &TestApp) {
    use keysmith::domain::audit::rollups;
    rollups::roll_up_due(app.state.pool(), app.now())
        .await
        .expect("days");
    rollups::roll_up_hours(app.state.pool(), app.now())
        .await
        .expect("hours");
}

/// The start of the current hour, unix seconds.
fn this_hour(app: &TestApp) -> i64 {
    app.now().unix_timestamp().div_euclid(3600) * 3600
}

both_engines! {
    async fn the_anomaly_check_reads_its_history_from_the_hourly_rollups(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let steady = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        let runaway = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        // 20 calls in 9 of the past hours: the usual (p95 of 168 hours) is 20.
        let history: Vec<i64> = (2..=10).collect();
        calls_in_hours(&app, &[&steady, &runaway], &su, ("search", 20), &history).await;
        roll_up(&app).await;
        // Retention (or a short one) took the raw rows of those hours.
        sqlx::query("DELETE FROM audit_events WHERE action = 'tool.call' AND at < $1")
            .bind(this_hour(&app))
            .execute(app.state.pool()).await.expect("delete");
        calls(&app, &steady, &su, "search", 150, 0).await;
        calls(&app, &runaway, &su, "search", 250, 0).await;

        keysmith::domain::events::anomalies::enqueue_due(app.state.pool(), app.now()).await.expect("check");
        assert!(anomaly_mails(&app, &steady).await.is_empty(), "150 is not ten times its usual 20");
        let mails = anomaly_mails(&app, &runaway).await;
        assert_eq!(mails.len(), 1, "250 is");
        let payload: serde_json::Value = serde_json::from_str(&mails[0]).expect("json");
        assert_eq!((payload["calls"].clone(), payload["usual_p95"].clone()), (json!(250), json!(20)), "{payload}");
    }

    async fn the_current_hour_is_read_from_the_minute_rollups(app: TestApp) {
        use keysmith::domain::audit::rollups;
        // The server's own first tick, at start, could otherwise run the
        // check between the steps below (with the raw rows, then without).
        let _no_server_tick = app.state.ticking.lock().await;
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        // Half past: the calls and the check are in the same hour.
        let past_hour = app.now().unix_timestamp().rem_euclid(3600);
        app.clock.advance(time::Duration::seconds((1800 - past_hour).rem_euclid(3600)));
        calls(&app, &key, &su, "search", 180, 0).await;
        calls(&app, &key, &su, "echo", 70, 0).await;
        app.clock.advance(time::Duration::minutes(2));
        roll_up(&app).await;
        let minutes = rollups::roll_up_minutes(app.state.pool(), app.now()).await.expect("minutes");
        assert_eq!(minutes, 1, "the minute of the calls");
        // The raw rows are gone: the count and the top tools can only come
        // from the minute rollups.
        sqlx::query("DELETE FROM audit_events WHERE action = 'tool.call'")
            .execute(app.state.pool()).await.expect("delete");

        keysmith::domain::events::anomalies::enqueue_due(app.state.pool(), app.now()).await.expect("check");
        let mails = anomaly_mails(&app, &key).await;
        assert_eq!(mails.len(), 1);
        let payload: serde_json::Value = serde_json::from_str(&mails[0]).expect("json");
        assert_eq!(payload["calls"], 250, "{payload}");
        assert_eq!(payload["top_tools"], json!([["search", 180], ["echo", 70]]), "{payload}");
    }

    async fn hours_not_rolled_up_yet_are_read_raw_and_counted_once(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await["id"].as_str().expect("id").to_owned();
        // Nine busy hours make the usual: seven rolled up, then two the
        // rollups have not reached (late, or the scheduler lagging).
        let rolled: Vec<i64> = (3..=9).collect();
        calls_in_hours(&app, &[&key], &su, ("search", 30), &rolled).await;
        roll_up(&app).await;
        calls_in_hours(&app, &[&key], &su, ("search", 30), &[2, 1]).await;
        calls(&app, &key, &su, "search", 301, 0).await;

        keysmith::domain::events::anomalies::enqueue_due(app.state.pool(), app.now()).await.expect("check");
        let mails = anomaly_mails(&app, &key).await;
        assert_eq!(mails.len(), 1);
        let payload: serde_json::Value = serde_json::from_str(&mails[0]).expect("json");
        // Any hour missed would make the p95 0, any counted twice 60.
        assert_eq!((payload["calls"].clone(), payload["usual_p95"].clone()), (json!(301), json!(30)), "{payload}");
    }
}
