//! The gateway's `Origin` check, through the real proxy: a browser page of a
//! foreign origin (DNS rebinding included) never reaches the upstream; clients that send no `Origin` are not affected.

use keysmith::gateway::AllowedOrigin;
use keysmith_verify::TenantScope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    gateway::{GatewayParts, plain_upstream, start_gateway_with},
    helpers::TestApp,
    mcp::initialize,
};

/// A gateway in front of an upstream that answers 200 to anything, with
/// `allowed` as `--allowed-origin`.
async fn gateway_allowing(app: &TestApp, allowed: &[&str]) -> String {
    let upstream = plain_upstream().await;
    let parts = GatewayParts {
        scope: TenantScope::only(app.tenant.slug.as_str()),
        roots_pem: None,
        limiter: None,
        allowed_origins: allowed
            .iter()
            .map(|o| AllowedOrigin::parse(o).expect("origin"))
            .collect(),
    };
    start_gateway_with(app, &upstream, parts, std::future::pending())
        .await
        .0
}

/// The status of an MCP POST with `key` (if any) and these headers.
async fn post(gateway: &str, key: Option<&str>, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{gateway}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

both_engines! {
    async fn gateway_refuses_foreign_origins_before_the_key(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key = Some(key["key"].as_str().expect("key"));
        let gateway = gateway_allowing(&app, &["https://app.example.com"]).await;
        let own = gateway.clone();
        let port = gateway.rsplit(':').next().expect("port");
        let rebound = format!("evil.example.com:{port}");
        let rebound_origin = format!("http://{rebound}");
        let localhost = format!("localhost:{port}");
        let localhost_origin = format!("http://{localhost}");
        let own_on_https = own.replacen("http://", "https://", 1);

        for (what, headers) in [
            ("no Origin (not a browser)", vec![]),
            ("its own origin", vec![("origin", own.as_str())]),
            ("its own origin by another loopback name", vec![("host", localhost.as_str()), ("origin", localhost_origin.as_str())]),
            ("an --allowed-origin", vec![("origin", "https://app.example.com")]),
        ] {
            assert_eq!(post(&gateway, key, &headers).await.0, StatusCode::OK, "{what}");
        }
        for (what, headers) in [
            ("a foreign origin", vec![("origin", "https://evil.example.com")]),
            ("a DNS-rebound name", vec![("host", rebound.as_str()), ("origin", rebound_origin.as_str())]),
            ("an opaque origin", vec![("origin", "null")]),
            ("its own host on another scheme", vec![("origin", own_on_https.as_str())]),
            ("an allowed origin's host on http", vec![("origin", "http://app.example.com")]),
        ] {
            let (status, body) = post(&gateway, key, &headers).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
            assert_eq!(body["error"]["code"], -32600, "{what}: {body}");
            assert_eq!(body["id"], Value::Null);
        }
        // Judged before the key: the answer is the same without one.
        let (status, _) = post(&gateway, None, &[("origin", "https://evil.example.com")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(post(&gateway, None, &[]).await.0, StatusCode::UNAUTHORIZED);
    }
}
