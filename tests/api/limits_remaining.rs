//! `POST /api/v1/verify` reports what is left of a key's budget when the
//! server shares the layers' Redis, and reads it without counting.

use std::sync::Arc;

use keysmith_verify::limit::RedisLimiter;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::TestApp,
    limits::{call, limited_gateway},
    limits_redis::REDIS,
};

both_engines! {
    async fn verify_reports_the_shared_budget_without_spending_it(app: TestApp) {
        let clock = app.clock.clone();
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_REDIS_URL", REDIS.to_owned())], Some(clock)).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"per_minute": 5, "tools": [{"tool": "who*", "per_minute": 3}]}, "quota": {"calls": 10, "per": "day"}})).await;
        let plain = key["key"].as_str().expect("key");
        let fresh = app.verify(plain, Some("whoami")).await;
        assert_eq!(fresh["remaining"], json!({"per_minute": 5, "tool_per_minute": 3, "quota": 10}), "{fresh}");
        // Asking again spent nothing.
        assert_eq!(app.verify(plain, Some("whoami")).await["remaining"], fresh["remaining"]);
        // The server's defaults match the layer's: the same Redis keys.
        let limiter = Arc::new(RedisLimiter::builder().connect(REDIS).expect("redis url"));
        let (gateway, _flusher) = limited_gateway(&app, limiter).await;
        for id in 1..=2 {
            assert_ne!(call(&gateway, plain, id, "whoami").await.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        let after = app.verify(plain, Some("whoami")).await;
        assert_eq!(after["remaining"], json!({"per_minute": 3, "tool_per_minute": 1, "quota": 8}), "{after}");
        // Another tool has no override.
        let other = app.verify(plain, Some("echo")).await;
        assert_eq!(other["remaining"]["tool_per_minute"], Value::Null);
        // A key without limits has nothing to count; a refused key no budget.
        let plain_key = app.create_key(&su, json!({})).await;
        let unlimited = app.verify(plain_key["key"].as_str().expect("key"), None).await;
        assert_eq!(unlimited["remaining"], json!({"per_minute": null, "tool_per_minute": null, "quota": null}));
        expect_revoked(&app, key["id"].as_str().expect("id"), plain).await;
    }

    async fn without_redis_the_remaining_budget_is_null(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"quota": {"calls": 10, "per": "day"}})).await;
        let verdict = app.verify(key["key"].as_str().expect("key"), Some("whoami")).await;
        assert_eq!(verdict["valid"], true);
        assert_eq!(verdict["remaining"], Value::Null, "{verdict}");
        assert_eq!(verdict["quota"], json!({"calls": 10, "per": "day"}));
    }
}

async fn expect_revoked(app: &TestApp, id: &str, plain: &str) {
    assert_eq!(app.revoke_key(id, "done").await.status(), StatusCode::OK);
    let refused = app.verify(plain, Some("whoami")).await;
    assert_eq!(refused["valid"], false);
    assert_eq!(refused["remaining"], Value::Null);
}
