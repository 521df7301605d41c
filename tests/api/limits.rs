//! Per-key rate limits and quotas: stored with the key, enforced by the layer.

use std::sync::Arc;

use keysmith_verify::{InMemoryLimiter, Limiter, TenantScope, audit::AuditFlusher};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    gateway::{start_gateway, upstream},
    helpers::{TestApp, expect_json},
    mcp::tool_call,
};

/// A gateway in front of the demo server with `limiter`, and its audit flusher.
pub async fn limited_gateway(app: &TestApp, limiter: Arc<dyn Limiter>) -> (String, AuditFlusher) {
    let (upstream, _events) = upstream().await;
    let scope = TenantScope::only(app.tenant.slug.as_str());
    let pending = std::future::pending();
    let (base, flusher, _serving) =
        start_gateway(app, &upstream, scope, None, Some(limiter), pending).await;
    (base, flusher)
}

pub async fn call(gateway: &str, key: &str, id: i64, tool: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{gateway}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(key)
        .json(&tool_call(id, tool))
        .send()
        .await
        .expect("send")
}

/// Audited calls of the tool `whoami` by `key_id` with `reason`.
pub async fn audited(app: &TestApp, key_id: &str, reason: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE key_id = $1 AND action = 'tool.call' AND tool = 'whoami' AND reason = $2",
    )
    .bind(key_id)
    .bind(reason)
    .fetch_one(app.state.pool())
    .await
    .expect("count")
}

both_engines! {
    async fn limits_are_validated_stored_and_shown(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let before = app.count("api_keys").await;
        for bad in [
            json!({"rate_limit": {"per_minute": 0}}),
            json!({"rate_limit": {"per_minute": -5}}),
            json!({"rate_limit": {}}),
            json!({"rate_limit": {"tools": [{"tool": "bad tool", "per_minute": 1}]}}),
            json!({"rate_limit": {"tools": (0..21).map(|i| json!({"tool": format!("t{i}"), "per_minute": 1})).collect::<Vec<_>>()}}),
            json!({"quota": {"calls": 0, "per": "day"}}),
            json!({"quota": {"calls": 10, "per": "week"}}),
            json!({"quota": {"calls": 10}}),
        ] {
            let mut body = json!({"service_user_id": su, "name": "deploy"});
            body.as_object_mut().expect("object").extend(bad.as_object().expect("object").clone());
            let res = app.post("/api/v1/tenants/acme/keys", &body).await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        assert_eq!(app.count("api_keys").await, before, "nothing written");

        let limits = json!({"rate_limit": {"per_minute": 600, "tools": [{"tool": "search*", "per_minute": 60}]}, "quota": {"calls": 10000, "per": "month"}});
        let key = app.create_key(&su, limits.clone()).await;
        assert_eq!(key["rate_limit"], limits["rate_limit"]);
        assert_eq!(key["quota"], limits["quota"]);
        let id = key["id"].as_str().expect("id");
        let read = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await, StatusCode::OK).await;
        assert_eq!(read["quota"], limits["quota"]);
        let verdict = app.verify(key["key"].as_str().expect("key"), None).await;
        assert_eq!(verdict["rate_limit"], limits["rate_limit"], "{verdict}");
        assert_eq!(verdict["quota"], limits["quota"]);
        let plain = app.create_key(&su, json!({})).await;
        assert_eq!(plain["rate_limit"], Value::Null);
        assert_eq!(plain["quota"], Value::Null);
        // A rotation keeps the limits.
        let rotated = expect_json(app.rotate_key(id).await, StatusCode::CREATED).await;
        assert_eq!(rotated["new"]["rate_limit"], limits["rate_limit"], "{rotated}");
    }

    async fn the_call_over_the_rate_is_429_with_retry_after(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"per_minute": 3}})).await;
        let plain = key["key"].as_str().expect("key");
        let (gateway, flusher) = limited_gateway(&app, Arc::new(InMemoryLimiter::new())).await;
        // The test clock stands still: three calls are the whole burst.
        for id in 1..=3 {
            assert_ne!(call(&gateway, plain, id, "whoami").await.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        let refused = call(&gateway, plain, 4, "whoami").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "20");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["id"], 4, "{body}");
        assert_eq!(body["error"]["message"], "rate limit 3/min for this key exceeded");
        // Other requests than tool calls are not limited.
        let list = reqwest::Client::new().post(format!("{gateway}/mcp")).bearer_auth(plain)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})).send().await.expect("send");
        assert_ne!(list.status(), StatusCode::TOO_MANY_REQUESTS);
        // Twenty seconds later one more call fits.
        app.clock.advance(time::Duration::seconds(20));
        assert_ne!(call(&gateway, plain, 5, "whoami").await.status(), StatusCode::TOO_MANY_REQUESTS);
        flusher.shutdown().await;
        let id = key["id"].as_str().expect("id");
        assert_eq!(audited(&app, id, "rate_limited").await, 1);
        assert_eq!(audited(&app, id, "valid").await, 4);
    }

    async fn a_tool_override_limits_only_matching_tools(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"tools": [{"tool": "who*", "per_minute": 2}]}})).await;
        let plain = key["key"].as_str().expect("key");
        let (gateway, _flusher) = limited_gateway(&app, Arc::new(InMemoryLimiter::new())).await;
        for id in 1..=2 {
            assert_ne!(call(&gateway, plain, id, "whoami").await.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        let refused = call(&gateway, plain, 3, "whoami").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "30");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["message"], "rate limit 2/min for tools matching who* exceeded");
        for id in 10..20 {
            assert_ne!(call(&gateway, plain, id, "echo").await.status(), StatusCode::TOO_MANY_REQUESTS);
        }
    }

    async fn a_quota_admits_exactly_its_calls_under_a_burst(app: TestApp) {
        const N: usize = 5;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"quota": {"calls": N, "per": "day"}})).await;
        let plain = key["key"].as_str().expect("key").to_owned();
        let (gateway, flusher) = limited_gateway(&app, Arc::new(InMemoryLimiter::new())).await;
        let calls = (0..2 * N).map(|i| {
            let (gateway, plain) = (gateway.clone(), plain.clone());
            tokio::spawn(async move { call(&gateway, &plain, i64::try_from(i).expect("small"), "whoami").await.status() })
        });
        let statuses = futures_util::future::join_all(calls).await;
        let refused = statuses.iter().filter(|s| *s.as_ref().expect("task") == StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!(refused, N, "{statuses:?}");
        let over = call(&gateway, &plain, 99, "whoami").await;
        let body: Value = over.json().await.expect("json");
        assert_eq!(body["error"]["message"], "quota of 5 calls per day exhausted");
        flusher.shutdown().await;
        let id = key["id"].as_str().expect("id");
        assert_eq!(audited(&app, id, "valid").await, 5);
        assert_eq!(audited(&app, id, "quota_exhausted").await, 6);
    }
}

both_engines! {
    async fn limits_reach_a_remote_layer_and_rmcp_sees_a_429(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"rate_limit": {"per_minute": 1}})).await;
        let mcp = crate::mcp::McpServer::start(&app, crate::mcp::Backend::Remote, std::time::Duration::from_secs(5)).await;
        let client = mcp.client(key["key"].as_str().expect("key"), std::collections::HashMap::new()).await.expect("initialize");
        crate::mcp::call_text(&client, "whoami", json!({})).await.expect("the first call");
        let refused = crate::mcp::call_text(&client, "whoami", json!({})).await.expect_err("over the rate");
        // rmcp reports a non-2xx answer as a transport error: it names the
        // status, not the JSON-RPC message (the layer's body still carries it).
        assert!(refused.contains("429"), "{refused}");
        let _ = client.cancel().await;
    }
}
