//! Limits shared through Redis (127.0.0.1:6379): one budget across gateways,
//! and what happens when Redis cannot be reached.

use std::sync::Arc;

use keysmith::domain::crypto::random;
use keysmith_verify::limit::RedisLimiter;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    limits::{audited, call, limited_gateway},
};

pub const REDIS: &str = "redis://127.0.0.1:6379";

/// A limiter on the shared Redis, under a prefix of this test's own.
fn limiter(prefix: &str) -> Arc<RedisLimiter> {
    Arc::new(
        RedisLimiter::builder()
            .prefix(prefix)
            .connect(REDIS)
            .expect("redis url"),
    )
}

both_engines! {
    async fn two_gateways_share_one_rate_budget(app: TestApp) {
        let prefix = format!("keysmith-test:{}", random::base62(12));
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"per_minute": 3}})).await;
        let plain = key["key"].as_str().expect("key");
        let (first, flusher) = limited_gateway(&app, limiter(&prefix)).await;
        let (second, flusher_b) = limited_gateway(&app, limiter(&prefix)).await;
        for (id, gateway) in [(1, &first), (2, &second), (3, &first)] {
            assert_ne!(call(gateway, plain, id, "whoami").await.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        let refused = call(&second, plain, 4, "whoami").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "20");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["id"], 4);
        assert_eq!(body["error"]["message"], "rate limit 3/min for this key exceeded");
        flusher.shutdown().await;
        flusher_b.shutdown().await;
        let id = key["id"].as_str().expect("id");
        assert_eq!(audited(&app, id, "rate_limited").await, 1);
        assert_eq!(audited(&app, id, "valid").await, 3);
    }

    async fn two_gateways_share_one_quota_under_a_burst(app: TestApp) {
        const N: usize = 6;
        let prefix = format!("keysmith-test:{}", random::base62(12));
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"tools": [{"tool": "echo", "per_minute": 1}]}, "quota": {"calls": N, "per": "month"}})).await;
        let plain = key["key"].as_str().expect("key").to_owned();
        let (first, flusher_a) = limited_gateway(&app, limiter(&prefix)).await;
        let (second, flusher_b) = limited_gateway(&app, limiter(&prefix)).await;
        let calls = (0..2 * N).map(|i| {
            let gateway = if i % 2 == 0 { first.clone() } else { second.clone() };
            let plain = plain.clone();
            tokio::spawn(async move { call(&gateway, &plain, i64::try_from(i).expect("small"), "whoami").await.status() })
        });
        let statuses = futures_util::future::join_all(calls).await;
        let refused = statuses.iter().filter(|s| *s.as_ref().expect("task") == StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!(refused, N, "{statuses:?}");
        flusher_a.shutdown().await;
        flusher_b.shutdown().await;
        let id = key["id"].as_str().expect("id");
        assert_eq!(audited(&app, id, "valid").await, i64::try_from(N).expect("small"));
        assert_eq!(audited(&app, id, "quota_exhausted").await, i64::try_from(N).expect("small"));
    }

    async fn unreachable_redis_passes_rates_and_refuses_quotas(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let rated = app.create_key(&su, json!({"rate_limit": {"per_minute": 1}})).await;
        let metered = app.create_key(&su, json!({"quota": {"calls": 100, "per": "day"}})).await;
        let limiter = Arc::new(RedisLimiter::builder().prefix("keysmith-test:down").connect("redis://127.0.0.1:1").expect("url"));
        let (gateway, flusher) = limited_gateway(&app, limiter.clone()).await;
        for id in 1..=2 {
            let status = call(&gateway, rated["key"].as_str().expect("key"), id, "whoami").await.status();
            assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_ne!(status, StatusCode::SERVICE_UNAVAILABLE);
        }
        let refused = call(&gateway, metered["key"].as_str().expect("key"), 7, "whoami").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["id"], 7, "{body}");
        assert_eq!(limiter.passed_unchecked(), 2);
        assert_eq!(limiter.refused_unchecked(), 1);
        flusher.shutdown().await;
        assert_eq!(audited(&app, metered["id"].as_str().expect("id"), "limits_unavailable").await, 1);
    }
}
