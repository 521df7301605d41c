//! `PATCH /api/v1/tenants/{tenant}/keys/{id}`: changing the limits of a key.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

async fn patch_as(app: &TestApp, admin: &str, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .expect("patch")
}

/// The JSON reasons (before and after) of the `action` audit events, oldest
/// first; with `key_id`, only that key's.
pub async fn audited_changes(app: &TestApp, action: &str, key_id: Option<&str>) -> Vec<Value> {
    let rows: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT key_id, reason FROM audit_events WHERE action = $1 ORDER BY id")
            .bind(action)
            .fetch_all(app.state.pool())
            .await
            .expect("audit");
    rows.iter()
        .filter(|(key, _)| key_id.is_none() || key.as_deref() == key_id)
        .map(|(_, reason)| serde_json::from_str(reason).expect("json reason"))
        .collect()
}

async fn limit_changes(app: &TestApp, key_id: &str) -> Vec<Value> {
    audited_changes(app, "key.limits", Some(key_id)).await
}

both_engines! {
    async fn limits_of_a_key_change_audited_and_reach_verify(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"quota": {"calls": 100, "per": "day"}})).await;
        let id = key["id"].as_str().expect("id");
        let path = format!("/api/v1/tenants/acme/keys/{id}");
        let rate = json!({"per_minute": 60, "tools": [{"tool": "search*", "per_minute": 6}]});
        let changed = expect_json(patch_as(&app, &app.admin_key, &path, &json!({"rate_limit": rate})).await, StatusCode::OK).await;
        assert_eq!(changed["rate_limit"], rate);
        assert_eq!(changed["quota"], json!({"calls": 100, "per": "day"}), "an absent part stays");
        let verdict = app.verify(key["key"].as_str().expect("key"), None).await;
        assert_eq!(verdict["rate_limit"], rate, "{verdict}");
        // null lifts a part.
        let lifted = expect_json(patch_as(&app, &app.admin_key, &path, &json!({"quota": null})).await, StatusCode::OK).await;
        assert_eq!(lifted["quota"], Value::Null);
        assert_eq!(lifted["rate_limit"], rate);
        let changes = limit_changes(&app, id).await;
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0]["before"], json!({"quota": {"calls": 100, "per": "day"}}));
        assert_eq!(changes[0]["after"]["rate_limit"], rate);
        assert_eq!(changes[1]["after"], json!({"rate_limit": rate}));
    }

    async fn bad_limit_edits_change_nothing(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"per_minute": 10}})).await;
        let id = key["id"].as_str().expect("id");
        let path = format!("/api/v1/tenants/acme/keys/{id}");
        for bad in [
            json!({}),
            json!({"rate_limit": {"per_minute": 0}}),
            json!({"rate_limit": {}}),
            json!({"rate_limit": {"tools": [{"tool": "bad tool", "per_minute": 1}]}}),
            json!({"quota": {"calls": 0, "per": "day"}}),
            json!({"quota": {"calls": 5, "per": "week"}}),
            json!({"rate_limit": {"per_minute": 5}, "quota": {"calls": 0, "per": "day"}}),
            json!({"name": "renamed"}),
        ] {
            let res = patch_as(&app, &app.admin_key, &path, &bad).await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        // Another tenant's key does not exist for it.
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let stolen = patch_as(&app, &globex_admin, &path.replace("acme", "globex"), &json!({"quota": {"calls": 1, "per": "day"}})).await;
        expect_error(stolen, StatusCode::NOT_FOUND, "not_found").await;
        // A revoked key's limits no longer matter.
        expect_json(app.revoke_key(id, "done").await, StatusCode::OK).await;
        let late = patch_as(&app, &app.admin_key, &path, &json!({"quota": {"calls": 1, "per": "day"}})).await;
        expect_error(late, StatusCode::CONFLICT, "conflict").await;
        let read = expect_json(app.get(&path).await, StatusCode::OK).await;
        assert_eq!(read["rate_limit"], json!({"per_minute": 10}));
        assert_eq!(read["quota"], Value::Null);
        assert!(limit_changes(&app, id).await.is_empty(), "nothing audited");
    }

    async fn concurrent_limit_edits_each_audit_what_they_replaced(app: TestApp) {
        const N: u32 = 8;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id").to_owned();
        let path = format!("/api/v1/tenants/acme/keys/{id}");
        let edits = (1..=N).map(|n| {
            let request = app.client.patch(app.url(&path)).bearer_auth(&app.admin_key);
            tokio::spawn(async move {
                request.json(&json!({"rate_limit": {"per_minute": n}})).send().await.expect("patch").status()
            })
        });
        let statuses: Vec<StatusCode> = futures_util::future::join_all(edits).await.into_iter().map(|s| s.expect("task")).collect();
        assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{statuses:?}");
        let applied = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert!(applied >= 1, "{statuses:?}");
        // The audit trail is one chain: each change's before is the previous after.
        let changes = limit_changes(&app, &id).await;
        assert_eq!(changes.len(), applied);
        assert_eq!(changes[0]["before"], json!({}));
        for pair in changes.windows(2) {
            assert_eq!(pair[1]["before"], pair[0]["after"], "{changes:?}");
        }
        let read = expect_json(app.get(&path).await, StatusCode::OK).await;
        assert_eq!(read["rate_limit"], changes[applied - 1]["after"]["rate_limit"]);
    }
}
