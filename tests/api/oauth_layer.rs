//! The layer as an OAuth protected resource (`VerifyLayerBuilder::
//! protected_resource`), verifying through a Keysmith server
//! (`POST /api/v1/verify`, the remote backend): access tokens carry their
//! resource and scopes over that path too. Without a protected resource,
//! a layer refuses every token.

use std::{sync::Arc, time::Duration};

use keysmith_verify::{ProtectedResource, RemoteVerifier, TenantScope, VerifyLayer};
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
    helpers::TestApp,
    mcp::{call_text, demo, tool_call},
    oauth::client_token,
};

const RESOURCE: &str = "https://mcp.example.com/mcp";

/// The demo MCP server behind a remote-backend layer; `resource` makes it
/// a protected resource. Returns its `/mcp` URL.
async fn serve(app: &TestApp, resource: Option<&str>) -> String {
    let verifier = RemoteVerifier::new(&app.base, app.admin_key.clone()).expect("client");
    let mut builder = VerifyLayer::builder(verifier, TenantScope::only("acme"))
        .cache_ttl(Duration::ZERO)
        .clock(Arc::new(app.clock.clone()));
    if let Some(resource) = resource {
        let issuer = format!("{}/oauth/acme", app.state.config.public_url);
        builder = builder
            .protected_resource(ProtectedResource::new(resource, &issuer).expect("resource"));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let router = demo::router(builder.build());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("mcp server") });
    url
}

async fn raw_call(url: &str, bearer: &str, tool: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(bearer)
        .json(&tool_call(1, tool))
        .send()
        .await
        .expect("send")
}

both_engines! {
    async fn a_remote_layer_accepts_tokens_for_its_resource(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "echo"]})).await;
        let url = serve(&app, Some(RESOURCE)).await;
        let token = client_token(&app, "acme", &key, RESOURCE, Some("tools:whoami")).await;
        let token = token["access_token"].as_str().expect("token");
        let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token.to_owned());
        let client = ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await.expect("initialize");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-key-id"], key["id"]);
        let _ = client.cancel().await;
        let res = raw_call(&url, token, "echo").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers()["www-authenticate"].to_str().expect("ascii").starts_with("Bearer error=\"insufficient_scope\", scope=\"tools:echo\""));

        let elsewhere = client_token(&app, "acme", &key, "https://other.example.com/mcp", None).await;
        let res = raw_call(&url, elsewhere["access_token"].as_str().expect("token"), "whoami").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "bound to another resource");
    }

    async fn a_layer_that_is_no_protected_resource_refuses_tokens(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await;
        let url = serve(&app, None).await;
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let res = raw_call(&url, token["access_token"].as_str().expect("token"), "whoami").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "keys-only layers keep their challenge");
        let res = raw_call(&url, key["key"].as_str().expect("key"), "whoami").await;
        assert_ne!(res.status(), StatusCode::UNAUTHORIZED, "keys work as before");
    }
}
