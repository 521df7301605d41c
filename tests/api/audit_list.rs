//! A key's audit list, page by page: newest first by time and then by id,
//! every event of the key exactly once across the pages and no event of
//! another key, and a cursor the API did not return refused.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin::{PASSWORD, admin_user, browser, sign_in},
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// A tool call of `key_id` stamped `at`, named `tool` so the list can be
/// told apart.
async fn insert_call(app: &TestApp, key_id: &str, tool: &str, at: i64) {
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, key_id, actor, action, tool, outcome, at) \
         VALUES ($1, $2, 'key', 'tool.call', $3, 'allowed', $4)",
    )
    .bind(&app.tenant.id)
    .bind(key_id)
    .bind(tool)
    .bind(at)
    .execute(app.state.pool())
    .await
    .expect("insert call");
}

/// What the list should show: every event of the key, by (at, id) descending.
async fn expected_order(app: &TestApp, key_id: &str) -> Vec<String> {
    let mut rows: Vec<(i64, i64, String, Option<String>)> =
        sqlx::query_as("SELECT at, id, action, tool FROM audit_events WHERE key_id = $1")
            .bind(key_id)
            .fetch_all(app.state.pool())
            .await
            .expect("events");
    rows.sort_by_key(|row| std::cmp::Reverse((row.0, row.1)));
    rows.into_iter()
        .map(|(_, _, action, tool)| tool.unwrap_or(action))
        .collect()
}

fn label(event: &Value) -> String {
    event["tool"]
        .as_str()
        .or(event["action"].as_str())
        .expect("tool or action")
        .to_owned()
}

both_engines! {
    async fn pages_show_every_event_once_newest_first(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let other = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        let other_id = other["id"].as_str().expect("id");
        // Stamped out of insertion order, several in one second: the layer
        // stamps a call when it is made, and its batch may land later.
        let now = app.now().unix_timestamp();
        let offsets = [700, 50, 50, 900, 50, 200, 700, 10, 900, 900, 250, 5, 50];
        for (i, offset) in offsets.iter().enumerate() {
            insert_call(&app, key_id, &format!("t{i}"), now - offset).await;
            insert_call(&app, other_id, &format!("other{i}"), now - offset).await;
        }
        let expected = expected_order(&app, key_id).await;
        assert_eq!(expected.len(), offsets.len() + 1, "the calls and key.create");

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..=expected.len() {
            let path = match &cursor {
                Some(c) => format!("/api/v1/tenants/acme/keys/{key_id}/audit?limit=3&cursor={c}"),
                None => format!("/api/v1/tenants/acme/keys/{key_id}/audit?limit=3"),
            };
            let page = expect_json(app.get(&path).await, StatusCode::OK).await;
            let items = page["items"].as_array().expect("items");
            assert!(items.len() <= 3);
            seen.extend(items.iter().map(label));
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert!(cursor.is_none(), "the pages never ended");
        assert_eq!(seen, expected, "every event of the key once, by (at, id) descending");
    }

    async fn a_cursor_the_api_did_not_return_is_400(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        for cursor in ["12", "x.1", "1.x", "1.2.3", ".", "1.", "99999999999999999999.1"] {
            let res = app
                .get(&format!("/api/v1/tenants/acme/keys/{key_id}/audit?cursor={cursor}"))
                .await;
            expect_error(res, StatusCode::BAD_REQUEST, "invalid_cursor").await;
        }
    }

    async fn the_key_page_links_to_older_events_until_the_first(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        let now = app.now().unix_timestamp();
        // 60 calls, 25 a page: three pages, the last with key.create.
        for i in 0..60 {
            insert_call(&app, key_id, &format!("tool-{i:02}"), now - 60 + i / 4).await;
        }
        let expected = expected_order(&app, key_id).await;
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let mut path = format!("/admin/api-keys/{key_id}?tenant=acme");
        let mut pages = Vec::new();
        let mut all_shown = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let html = client.get(app.url(&path)).send().await.expect("page").text().await.expect("html");
            // The trail only: the usage histogram above it names tools too.
            let trail = html.split_once("<h2>Audit trail</h2>").expect("an audit trail").1;
            let shown: Vec<&String> = expected.iter().filter(|label| trail.contains(&format!(">{label}<"))).collect();
            pages.push(shown.len());
            all_shown.extend(shown);
            let Some(at) = html.find("&amp;cursor=") else { break };
            let cursor: String = html[at + "&amp;cursor=".len()..].chars().take_while(|c| *c != '"').collect();
            path = format!("/admin/api-keys/{key_id}?tenant=acme&cursor={cursor}");
        }
        assert_eq!(pages, [25, 25, 11], "60 calls and key.create, then no link");
        assert_eq!(all_shown.len(), expected.len(), "every event on one page");
        let res = client.get(app.url(&format!("/admin/api-keys/{key_id}?tenant=acme&cursor=1.x"))).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }

    async fn events_filter_by_kind_in_the_api_and_on_the_key_page(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        let now = app.now().unix_timestamp();
        for i in 0..6 {
            insert_call(&app, key_id, &format!("tool-{i}"), now - 10 + i).await;
        }
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, key_id, actor, action, tool, outcome, reason, at, status, duration_us) \
             VALUES ($1, $2, 'key', 'tool.call', 'forbidden-tool', 'denied', 'tool_not_allowed', $3, 403, 1850)",
        )
        .bind(&app.tenant.id).bind(key_id).bind(now - 1)
        .execute(app.state.pool()).await.expect("insert refusal");
        let limits = app.client.patch(app.url(&format!("/api/v1/tenants/acme/keys/{key_id}"))).bearer_auth(&app.admin_key).json(&json!({"rate_limit": {"per_minute": 60}})).send().await.expect("patch");
        assert_eq!(limits.status(), StatusCode::OK);

        let app = &app;
        let list = |kind: &'static str| {
            let path = format!("/api/v1/tenants/acme/keys/{key_id}/audit?kind={kind}");
            async move { expect_json(app.get(&path).await, StatusCode::OK).await["items"].as_array().cloned().expect("items") }
        };
        let admin: Vec<String> = list("admin").await.iter().map(label).collect();
        assert_eq!(admin, ["key.limits", "key.create"], "people's actions only");
        let calls = list("calls").await;
        assert_eq!(calls.len(), 7, "six allowed, one refused");
        assert!(calls.iter().all(|e| e["action"] == "tool.call"));
        let refusals = list("refusals").await;
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0]["tool"], "forbidden-tool");
        assert_eq!(refusals[0]["status"], 403);
        assert_eq!(refusals[0]["duration_us"], 1850);
        assert_eq!(list("all").await.len(), 9);
        let bad = app.get(&format!("/api/v1/tenants/acme/keys/{key_id}/audit?kind=secret")).await;
        expect_error(bad, StatusCode::BAD_REQUEST, "invalid_kind").await;

        // The key page: the same filter, with status and duration shown.
        admin_user(app, "viewer@acme.test", Role::Viewer).await;
        let client = browser();
        sign_in(app, &client, "viewer@acme.test", PASSWORD).await;
        let trail = |kind: &'static str| {
            let (client, url) = (client.clone(), app.url(&format!("/admin/api-keys/{key_id}?tenant=acme&kind={kind}")));
            async move {
                let html = client.get(url).send().await.expect("page").text().await.expect("html");
                html.split_once("<h2>Audit trail</h2>").expect("an audit trail").1.to_owned()
            }
        };
        let refused = trail("refusals").await;
        assert!(refused.contains(">forbidden-tool<") && refused.contains(">403<") && refused.contains("1.9 ms"), "{refused}");
        assert!(!refused.contains(">tool-0<"), "allowed calls are not refusals");
        assert!(refused.contains("aria-current=\"page\">Refusals"), "the filter in force is marked");
        let admin = trail("admin").await;
        assert!(admin.contains(">key.limits<") && !admin.contains(">tool.call<"), "{admin}");
        let res = client.get(app.url(&format!("/admin/api-keys/{key_id}?tenant=acme&kind=bogus"))).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
}
