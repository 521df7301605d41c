//! `Mcp-Method` / `Mcp-Name` (spec revision 2026-07-28) through the real
//! gateway: a header that agrees with the body goes on in one canonical
//! spelling, whatever the method it is defined for; one that disagrees never
//! reaches the upstream, nor do `Mcp-Param-*` headers under a revision whose
//! servers do not check them.

use std::sync::{Arc, Mutex};

use axum::{Json, Router, http::HeaderMap};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{both_engines, gateway::gateway};

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// An upstream that records each request's headers and answers an empty
/// JSON-RPC result.
async fn recording_upstream() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().expect("lock").push(headers);
            Json(json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream") });
    (base, seen)
}

fn request(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

both_engines! {
    async fn gateway_checks_routing_headers_of_every_addressed_method(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key = key["key"].as_str().expect("key").to_owned();
        let (upstream, seen) = recording_upstream().await;
        let gateway = gateway(&app, &upstream).await;
        let http = reqwest::Client::new();
        let post = |body: &Value, method: &str, name: &str| {
            http.post(format!("{gateway}/mcp"))
                .bearer_auth(&key)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", method)
                .header("mcp-name", name)
                .json(body)
                .send()
        };
        let prompt = request("prompts/get", json!({"name": "test_simple_prompt"}));
        let resource = request("resources/read", json!({"uri": "test://static-text"}));
        let unicode = request("tools/call", json!({"name": "tööl_unicode", "arguments": {}}));
        let unicode_spelled = "=?base64?dMO2w7ZsX3VuaWNvZGU=?=";
        for (body, method, name, forwarded) in [
            (&prompt, "prompts/get", "test_simple_prompt", "test_simple_prompt"),
            (&prompt, "prompts/get", "=?base64?dGVzdF9zaW1wbGVfcHJvbXB0?=", "test_simple_prompt"),
            (&resource, "resources/read", "test://static-text", "test://static-text"),
            (&unicode, "tools/call", unicode_spelled, unicode_spelled),
        ] {
            let response = post(body, method, name).await.expect("send");
            assert_eq!(response.status(), StatusCode::OK, "{method} {name}");
            let headers = seen.lock().expect("lock").pop().expect("reached the upstream");
            assert_eq!(headers["mcp-name"], forwarded, "{method} {name}");
            assert_eq!(headers["mcp-method"], method);
        }
        for (body, method, name) in [
            (&prompt, "prompts/get", "another_prompt"),
            (&resource, "resources/read", "test://another"),
            (&prompt, "prompts/get", "=?base64?dGVzdF9zaW1wbGVfcHJvbXB0?"),
            (&prompt, "tools/call", "test_simple_prompt"),
            (&resource, "resources/read", "=?base64?dGVzdDovL2Fub3RoZXI=?="),
        ] {
            let response = post(body, method, name).await.expect("send");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{method} {name}");
            let error: Value = response.json().await.expect("json-rpc error");
            assert_eq!(error["error"]["code"], -32020, "HeaderMismatch: {error}");
            assert_eq!(error["id"], 1);
        }
        assert!(seen.lock().expect("lock").is_empty(), "no mismatch reached the upstream");

        // Mcp-Param-* only where the server must check them against the body.
        let call = request("tools/call", json!({"name": "echo", "arguments": {"region": "eu"}}));
        for (version, status) in [("2026-07-28", StatusCode::OK), ("2025-11-25", StatusCode::BAD_REQUEST)] {
            let response = http.post(format!("{gateway}/mcp"))
                .bearer_auth(&key)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", version)
                .header("mcp-param-region", "eu")
                .json(&call)
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), status, "{version}");
        }
        assert_eq!(seen.lock().expect("lock").len(), 1, "only the 2026-07-28 call went on");
    }
}
