//! Behind `keysmith gateway --no-mcp` there are no tool calls: a key's rate
//! and quota count every request, and per-tool overrides do not apply.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{both_engines, child::Running, gateway::plain_upstream};

async fn get(gateway: &Running, key: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/anything", gateway.base))
        .bearer_auth(key["key"].as_str().expect("key"))
        .send()
        .await
        .expect("send")
}

both_engines! {
    async fn behind_no_mcp_every_request_counts_against_the_rate_and_the_quota(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        // The override would refuse the second request if it applied.
        let rated = app.create_key(&su, json!({"rate_limit": {"per_minute": 3, "tools": [{"tool": "*", "per_minute": 1}]}})).await;
        let quota = app.create_key(&su, json!({"quota": {"calls": 5, "per": "day"}})).await;
        let upstream = plain_upstream().await;
        let gateway = Running::gateway(&app, &upstream, &["--no-mcp"], &[], None);

        for n in 1..=3 {
            assert_eq!(get(&gateway, &rated).await.status(), StatusCode::OK, "request {n}");
        }
        let refused = get(&gateway, &rated).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=20).contains(&retry_after), "{retry_after}");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        assert_eq!(body["error"]["message"], "rate limit 3/min for this key exceeded");
        assert_eq!(body["error"]["retry_after"], retry_after);

        for n in 1..=5 {
            assert_eq!(get(&gateway, &quota).await.status(), StatusCode::OK, "request {n}");
        }
        let refused = get(&gateway, &quota).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "quota_exhausted", "{body}");
        assert_eq!(body["error"]["message"], "quota of 5 calls per day exhausted");
    }
}

both_engines! {
    async fn behind_no_mcp_gateways_sharing_redis_count_every_request_once(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let rated = app.create_key(&su, json!({"rate_limit": {"per_minute": 3, "tools": [{"tool": "*", "per_minute": 1}]}})).await;
        let upstream = plain_upstream().await;
        let redis = [("KEYSMITH_REDIS_URL", crate::limits_redis::REDIS)];
        let a = Running::gateway(&app, &upstream, &["--no-mcp"], &redis, None);
        let b = Running::gateway(&app, &upstream, &["--no-mcp"], &redis, None);

        for (n, gateway) in [&a, &b, &a].into_iter().enumerate() {
            assert_eq!(get(gateway, &rated).await.status(), StatusCode::OK, "request {}", n + 1);
        }
        let refused = get(&b, &rated).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "one budget for both gateways");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        assert_eq!(body["error"]["message"], "rate limit 3/min for this key exceeded");
    }
}
