//! The real `keysmith gateway --resource` binary as an OAuth protected
//! resource in front of an MCP server (rmcp): its RFC 9728 metadata, the
//! `401` and `403` challenges, and client-credentials tokens used through
//! it with the official Rust SDK client.

use std::time::Duration;

use reqwest::StatusCode;
use rmcp::{
    ServiceExt,
    model::ClientConfig,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::{
    both_engines,
    child::Running,
    gateway::upstream,
    gateway_remote::GatewayProcess,
    helpers::{TestApp, expect_json},
    mcp::{call_text, initialize, tool_call},
    oauth::{client_token, globex_key},
};

/// This gateway's public URL, as `--resource` names it.
pub(crate) const RESOURCE: &str = "http://localhost/mcp";

/// `keysmith gateway --tenant acme --resource <RESOURCE>` on `app`'s
/// database, announcing `app`'s issuer.
pub(crate) fn protected_gateway(app: &TestApp, upstream: &str) -> Running {
    Running::gateway(
        app,
        upstream,
        &["--resource", RESOURCE],
        &[("KEYSMITH_PUBLIC_URL", app.state.config.public_url.as_str())],
        None,
    )
}

pub(crate) async fn post(
    gateway: &Running,
    bearer: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/mcp", gateway.base))
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.expect("send")
}

/// Calls `tool` through `gateway` with the official Rust SDK client.
pub(crate) async fn call(gateway: &Running, bearer: &str, tool: &str) -> Result<String, String> {
    call_at(&format!("{}/mcp", gateway.base), bearer, tool).await
}

/// Calls `tool` at the MCP endpoint `url` with the official Rust SDK client.
pub(crate) async fn call_at(url: &str, bearer: &str, tool: &str) -> Result<String, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .auth_header(bearer.to_owned());
    let client = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|err| err.to_string())?;
    let result = call_text(&client, tool, json!({})).await;
    let _ = client.cancel().await;
    result
}

/// Waits (bounded) for the gateway's audit writer to file a call.
async fn audited_calls(app: &TestApp, key_id: &str, tool: &str) -> i64 {
    for _ in 0..100 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call' AND key_id = $1 AND tool = $2 AND outcome = 'allowed'",
        )
        .bind(key_id)
        .bind(tool)
        .fetch_one(app.state.pool())
        .await
        .expect("audit");
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    0
}

both_engines! {
    async fn a_token_calls_through_the_gateway_within_its_scopes(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "echo"]})).await;
        let (upstream, _events) = upstream().await;
        let gateway = protected_gateway(&app, &upstream);
        let http = reqwest::Client::new();

        // RFC 9728 metadata, at the path-suffixed and the bare well-known URL, without a key.
        for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
            let res = http.get(format!("{}{path}", gateway.base)).send().await.expect("metadata");
            let doc = expect_json(res, StatusCode::OK).await;
            assert_eq!(doc, json!({
                "resource": RESOURCE,
                "authorization_servers": [format!("{}/oauth/acme", app.state.config.public_url)],
                "scopes_supported": ["tools:*", "resources:*", "prompts:*"],
                "bearer_methods_supported": ["header"],
            }), "{path}");
        }
        // No credential: the challenge that starts discovery.
        let res = post(&gateway, None, &initialize()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer resource_metadata=\"http://localhost/.well-known/oauth-protected-resource/mcp\", scope=\"tools:* resources:* prompts:*\""
        );

        // A token narrowed to whoami, used by the official Rust SDK client.
        let token = client_token(&app, "acme", &key, RESOURCE, Some("tools:whoami")).await;
        let token = token["access_token"].as_str().expect("token");
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", gateway.base)).auth_header(token.to_owned());
        let client = ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await.expect("initialize with a token");
        let tools = client.list_all_tools().await.expect("tools/list");
        assert_eq!(tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(), ["whoami"], "the listing follows the token's scopes");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-key-id"], key["id"], "the parent key's identity: {who}");
        assert_eq!(who["identity"]["x-keysmith-service-user"], "agent");
        assert_eq!(who["authorization_seen"], false, "the token never reaches the upstream");
        assert!(call_text(&client, "echo", json!({"text": "x"})).await.is_err(), "echo is outside the token's scopes");
        let _ = client.cancel().await;
        // The refusal asks for the scope it needs (step-up).
        let res = post(&gateway, Some(token), &tool_call(7, "echo")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer error=\"insufficient_scope\", scope=\"tools:echo\", resource_metadata=\"http://localhost/.well-known/oauth-protected-resource/mcp\""
        );
        assert_eq!(audited_calls(&app, key["id"].as_str().expect("id"), "whoami").await, 1, "audited under the parent key");
        // The key itself keeps working, and may call echo.
        call(&gateway, key["key"].as_str().expect("key"), "echo").await.expect("the key calls echo");
    }

    async fn tokens_of_another_resource_tenant_or_a_dead_key_are_refused(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await;
        let (upstream, _events) = upstream().await;
        let gateway = protected_gateway(&app, &upstream);
        let challenge = "Bearer error=\"invalid_token\", resource_metadata=\"http://localhost/.well-known/oauth-protected-resource/mcp\", scope=\"tools:* resources:* prompts:*\"";

        let elsewhere = client_token(&app, "acme", &key, "https://b.example.com/mcp", None).await;
        let res = post(&gateway, elsewhere["access_token"].as_str(), &tool_call(1, "whoami")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a token for resource B at resource A");
        assert_eq!(res.headers()["www-authenticate"], challenge);

        let foreign = globex_key(&app).await;
        let foreign = client_token(&app, "globex", &foreign, RESOURCE, None).await;
        let res = post(&gateway, foreign["access_token"].as_str(), &tool_call(2, "whoami")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "another tenant's token for this very resource");

        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let token = token["access_token"].as_str().expect("token");
        call(&gateway, token, "whoami").await.expect("a live token calls");
        app.revoke_key(key["id"].as_str().expect("id"), "leaked").await;
        // Within the gateway's cache TTL (5 s; at once on PostgreSQL).
        let mut status = StatusCode::OK;
        for _ in 0..80 {
            status = post(&gateway, Some(token), &tool_call(4, "whoami")).await.status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the revoked key's token");
    }

    async fn a_gateway_without_a_database_takes_tokens_through_the_server(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "echo"]})).await;
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, keysmith::domain::Scope::verify()).await;
        let public_url = app.state.config.public_url.clone();
        let gateway = GatewayProcess::start(&app, &upstream, &verify_key, &["--resource", RESOURCE], &[("KEYSMITH_PUBLIC_URL", public_url.as_str())]).await;
        let res = reqwest::Client::new().get(format!("{}/.well-known/oauth-protected-resource/mcp", gateway.base)).send().await.expect("metadata");
        assert_eq!(expect_json(res, StatusCode::OK).await["authorization_servers"], json!([format!("{public_url}/oauth/acme")]));
        let token = client_token(&app, "acme", &key, RESOURCE, Some("tools:whoami")).await;
        let token = token["access_token"].as_str().expect("token");
        let who: Value = serde_json::from_str(&call_at(&gateway.mcp(), token, "whoami").await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-key-id"], key["id"], "verified through POST /api/v1/verify");
        let refused = reqwest::Client::new().post(gateway.mcp()).header("accept", "application/json, text/event-stream")
            .bearer_auth(token).json(&tool_call(2, "echo")).send().await.expect("send");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(refused.headers()["www-authenticate"].to_str().expect("ascii").contains("scope=\"tools:echo\""));
        let elsewhere = client_token(&app, "acme", &key, "https://b.example.com/mcp", None).await;
        assert!(call_at(&gateway.mcp(), elsewhere["access_token"].as_str().expect("token"), "whoami").await.is_err(), "bound to another resource");
    }

    async fn tokens_share_their_key_quota(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"quota": {"calls": 3, "per": "day"}})).await;
        let (upstream, _events) = upstream().await;
        let gateway = protected_gateway(&app, &upstream);
        let burst = (0..6).map(|_| client_token(&app, "acme", &key, RESOURCE, None));
        let tokens: Vec<String> = futures_util::future::join_all(burst).await.iter()
            .map(|t| t["access_token"].as_str().expect("token").to_owned()).collect();
        let calls = tokens.iter().map(|t| call(&gateway, t, "whoami"));
        let outcomes = futures_util::future::join_all(calls).await;
        let passed = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(passed, 3, "six tokens, one quota of three: {outcomes:?}");
        assert!(outcomes.iter().filter_map(|o| o.as_ref().err()).all(|e| e.contains("429")), "{outcomes:?}");
        let res = post(&gateway, key["key"].as_str(), &tool_call(9, "whoami")).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the key's own budget is spent too");
    }
}
