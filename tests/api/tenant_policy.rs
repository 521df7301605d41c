//! `/api/v1/tenants/{tenant}`: the key policy, its bounds, and its effect on
//! keys created and rotated afterwards.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

pub async fn patch(app: &TestApp, key: &str, slug: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/v1/tenants/{slug}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("patch")
}

fn days_from(now: time::OffsetDateTime, rfc3339: &Value) -> i64 {
    let at = time::OffsetDateTime::parse(
        rfc3339.as_str().expect("time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    (at - now).whole_days()
}

both_engines! {
    async fn the_policy_bounds_keys_created_and_rotated_afterwards(app: TestApp) {
        let policy = expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await;
        assert_eq!((policy["default_expiry_days"].as_i64(), policy["max_expiry_days"].as_i64(), policy["rotation_overlap_days"].as_i64()), (Some(90), Some(365), Some(7)));
        let key = app.admin_key.clone();
        let updated = expect_json(patch(&app, &key, "acme", json!({"max_expiry_days": 30, "default_expiry_days": 10, "rotation_overlap_days": 2, "key_prefix": "acme"})).await, StatusCode::OK).await;
        assert_eq!(updated["max_expiry_days"], 30);

        let su = app.create_service_user("ci-bot").await;
        let res = app.post("/api/v1/tenants/acme/keys", &json!({"service_user_id": su, "name": "k", "expires_in_days": 31})).await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let created = app.create_key(&su, json!({})).await;
        assert!(created["key"].as_str().expect("key").starts_with("acme_"), "new keys take the new prefix");
        assert_eq!(days_from(app.now(), &created["expires_at"]), 10, "the new default");
        let res = app.client.post(app.url(&format!("/api/v1/tenants/acme/keys/{}/rotate", created["id"].as_str().expect("id")))).bearer_auth(&key).json(&json!({"expires_in_days": 31})).send().await.expect("rotate");
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let rotated = expect_json(app.rotate_key(created["id"].as_str().expect("id")).await, StatusCode::CREATED).await;
        assert_eq!(days_from(app.now(), &rotated["old"]["expires_at"]), 2, "the new overlap");

        let (action, reason): (String, String) = sqlx::query_as("SELECT action, reason FROM audit_events WHERE action = 'tenant.policy'")
            .fetch_one(app.state.pool()).await.expect("audit");
        let change: Value = serde_json::from_str(&reason).expect("json");
        assert_eq!(action, "tenant.policy");
        assert_eq!((change["before"]["max_expiry_days"].as_i64(), change["after"]["max_expiry_days"].as_i64()), (Some(365), Some(30)));
    }

    async fn a_policy_out_of_bounds_changes_nothing(app: TestApp) {
        let key = app.admin_key.clone();
        for body in [
            json!({}),
            json!({"max_expiry_days": 0}),
            json!({"max_expiry_days": 3651}),
            json!({"default_expiry_days": 400}),
            json!({"max_expiry_days": 30}),
            json!({"rotation_overlap_days": 0}),
            json!({"rotation_overlap_days": 31}),
            json!({"key_prefix": "Bad_Prefix"}),
            json!({"slug": "other"}),
            json!({"max_expiry_days": "many"}),
        ] {
            let res = patch(&app, &key, "acme", body.clone()).await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        }
        let policy = expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await;
        assert_eq!((policy["default_expiry_days"].as_i64(), policy["max_expiry_days"].as_i64(), policy["key_prefix"].as_str()), (Some(90), Some(365), Some("ks")));
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.policy'").fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 0);

        let globex = app.create_tenant("globex").await;
        expect_error(patch(&app, &key, "globex", json!({"max_expiry_days": 1})).await, StatusCode::NOT_FOUND, "not_found").await;
        let verify_only = app.management_key_with(&globex, keysmith::domain::Scope::verify()).await;
        expect_error(patch(&app, &verify_only, "globex", json!({"max_expiry_days": 1})).await, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(keysmith::domain::tenancy::tenants::find_by_id(app.state.pool(), &globex.id).await.expect("query").expect("tenant").max_expiry_days, 365);
    }
}
