//! A tenant's default rate limit and quota: set in the policy, given to new
//! keys that set none of their own.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
    tenant_policy::patch,
};

async fn policy_changes(app: &TestApp) -> Vec<Value> {
    crate::limits_edit::audited_changes(app, "tenant.policy", None).await
}

both_engines! {
    async fn tenant_policy_default_limits_reach_new_keys_that_set_none(app: TestApp) {
        let key = app.admin_key.clone();
        let rate = json!({"per_minute": 600, "tools": [{"tool": "search*", "per_minute": 60}]});
        let quota = json!({"calls": 10000, "per": "month"});
        let updated = expect_json(patch(&app, &key, "acme", json!({"default_rate_limit": rate, "default_quota": quota})).await, StatusCode::OK).await;
        assert_eq!((&updated["default_rate_limit"], &updated["default_quota"]), (&rate, &quota));
        let su = app.create_service_user("ci-bot").await;
        let defaulted = app.create_key(&su, json!({})).await;
        assert_eq!((&defaulted["rate_limit"], &defaulted["quota"]), (&rate, &quota));
        // A key's own part wins; the part it leaves out comes from the tenant.
        let own = app.create_key(&su, json!({"rate_limit": {"per_minute": 5}})).await;
        assert_eq!((&own["rate_limit"], &own["quota"]), (&json!({"per_minute": 5}), &quota));
        // Lifting a default leaves the other; keys already issued keep theirs.
        let lifted = expect_json(patch(&app, &key, "acme", json!({"default_quota": null})).await, StatusCode::OK).await;
        assert_eq!((&lifted["default_rate_limit"], &lifted["default_quota"]), (&rate, &Value::Null));
        assert_eq!(app.create_key(&su, json!({})).await["quota"], Value::Null);
        let id = defaulted["id"].as_str().expect("id");
        assert_eq!(expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await, StatusCode::OK).await["quota"], quota);
        let changes = policy_changes(&app).await;
        assert_eq!(changes.len(), 2);
        assert_eq!((&changes[0]["before"]["default_quota"], &changes[0]["after"]["default_quota"]), (&Value::Null, &quota));
        assert_eq!(changes[1]["after"]["default_rate_limit"], rate);
    }

    async fn tenant_policy_bad_default_limits_change_nothing(app: TestApp) {
        let key = app.admin_key.clone();
        for body in [
            json!({"default_rate_limit": {"per_minute": 0}}),
            json!({"default_rate_limit": {}}),
            json!({"default_rate_limit": {"tools": [{"tool": "bad tool", "per_minute": 1}]}}),
            json!({"default_quota": {"calls": 0, "per": "day"}}),
            json!({"default_quota": {"calls": 5, "per": "week"}}),
            // A valid part beside an invalid one is not written either.
            json!({"max_expiry_days": 30, "default_quota": {"calls": 0, "per": "day"}}),
        ] {
            let res = patch(&app, &key, "acme", body.clone()).await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        }
        let policy = expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await;
        assert_eq!((policy["max_expiry_days"].as_i64(), &policy["default_quota"]), (Some(365), &Value::Null));
        assert!(policy_changes(&app).await.is_empty());
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let stolen = patch(&app, &globex_admin, "acme", json!({"default_quota": {"calls": 1, "per": "day"}})).await;
        expect_error(stolen, StatusCode::NOT_FOUND, "not_found").await;
    }

    async fn concurrent_policy_changes_lose_no_part(app: TestApp) {
        // Each request changes one part; all must survive (read-merge-write
        // under a row lock), and each audit entry's before is the previous after.
        let bodies = [
            json!({"default_rate_limit": {"per_minute": 60}}),
            json!({"default_quota": {"calls": 100, "per": "day"}}),
            json!({"rotation_overlap_days": 3}),
            json!({"default_expiry_days": 30}),
            json!({"key_prefix": "acme"}),
            json!({"max_expiry_days": 200}),
        ];
        let requests = bodies.iter().map(|body| {
            let request = app.client.patch(app.url("/api/v1/tenants/acme")).bearer_auth(&app.admin_key).json(body);
            tokio::spawn(async move { request.send().await.expect("patch").status() })
        });
        for status in futures_util::future::join_all(requests).await {
            assert_eq!(status.expect("task"), StatusCode::OK);
        }
        let policy = expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await;
        assert_eq!(policy["default_rate_limit"], json!({"per_minute": 60}));
        assert_eq!(policy["default_quota"], json!({"calls": 100, "per": "day"}));
        assert_eq!((policy["rotation_overlap_days"].as_i64(), policy["default_expiry_days"].as_i64(), policy["max_expiry_days"].as_i64()), (Some(3), Some(30), Some(200)));
        assert_eq!(policy["key_prefix"], "acme");
        let changes = policy_changes(&app).await;
        assert_eq!(changes.len(), bodies.len());
        for pair in changes.windows(2) {
            assert_eq!(pair[1]["before"], pair[0]["after"], "{changes:?}");
        }
    }
}
