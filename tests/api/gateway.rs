//! `keysmith gateway` in front of an MCP server that has no layer of its own.

use std::{collections::HashMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::State, response::Response};
use keysmith::gateway::{AllowedOrigin, OriginPolicy};
use keysmith_verify::{
    Limiter, SqlVerifier, TenantScope, VerifyLayer,
    audit::{AuditFlusher, spawn_sql_audit},
    session::SqlSessions,
};
use reqwest::StatusCode;
use rmcp::{
    ServiceExt,
    model::ClientConfig,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::{
    both_engines,
    helpers::TestApp,
    mcp::{call_text, demo, initialize, tool_call},
};

type Events = Arc<Mutex<Option<mpsc::Receiver<String>>>>;

/// The upstream: the demo MCP server unprotected, plus an SSE endpoint whose
/// events the test releases one by one.
pub async fn upstream() -> (String, mpsc::Sender<String>) {
    let (tx, rx) = mpsc::channel::<String>(8);
    let events: Events = Arc::new(Mutex::new(Some(rx)));
    let app = Router::new()
        .nest_service("/mcp", demo::mcp_service())
        .route("/events", axum::routing::get(sse))
        .with_state(events);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream") });
    (base, tx)
}

async fn sse(State(events): State<Events>) -> Response {
    let rx = events.lock().await.take().expect("one subscriber");
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(format!("data: {event}\n\n")), rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// An upstream that answers 200 "ok" to anything.
pub async fn plain_upstream() -> String {
    serve_upstream(Router::new().fallback(|| async { "ok" })).await
}

/// Serves `app` on a free port; its base URL.
pub async fn serve_upstream(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream") });
    base
}

/// The gateway as `keysmith gateway --tenant acme` builds it, on port 0, with the test's clock.
pub async fn gateway(app: &TestApp, upstream: &str) -> String {
    gateway_with(
        app,
        upstream,
        TenantScope::only(app.tenant.slug.as_str()),
        None,
    )
    .await
}

/// The gateway for `scope`, trusting `roots_pem` for an https upstream.
pub async fn gateway_with(
    app: &TestApp,
    upstream: &str,
    scope: TenantScope,
    roots_pem: Option<&[u8]>,
) -> String {
    let running = start_gateway(
        app,
        upstream,
        scope,
        roots_pem,
        None,
        std::future::pending(),
    );
    running.await.0
}

/// Every test gateway: `keysmith gateway`'s proxy behind the layer, on port 0,
/// with the test's clock, auditing to the app's database, and `limiter` if
/// given, serving until `shutdown`; returns its base URL, the audit flusher
/// and the serving task.
pub async fn start_gateway(
    app: &TestApp,
    upstream: &str,
    scope: TenantScope,
    roots_pem: Option<&[u8]>,
    limiter: Option<Arc<dyn Limiter>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (String, AuditFlusher, tokio::task::JoinHandle<()>) {
    let options = GatewayParts {
        scope,
        roots_pem,
        limiter,
        allowed_origins: Vec::new(),
    };
    start_gateway_with(app, upstream, options, shutdown).await
}

/// What a test gateway is built with besides its upstream.
pub struct GatewayParts<'a> {
    pub scope: TenantScope,
    pub roots_pem: Option<&'a [u8]>,
    pub limiter: Option<Arc<dyn Limiter>>,
    /// `--allowed-origin`.
    pub allowed_origins: Vec<AllowedOrigin>,
}

/// [`start_gateway`] with every part given.
pub async fn start_gateway_with(
    app: &TestApp,
    upstream: &str,
    GatewayParts {
        scope,
        roots_pem,
        limiter,
        allowed_origins,
    }: GatewayParts<'_>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (String, AuditFlusher, tokio::task::JoinHandle<()>) {
    let verifier = SqlVerifier::new(
        app.state.pool().clone(),
        app.state.peppers.clone(),
        Arc::new(app.clock.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origins = OriginPolicy::new(allowed_origins, listener.local_addr().expect("addr"));
    let (sink, flusher) = spawn_sql_audit(app.state.pool().clone(), 64, 256);
    let builder = VerifyLayer::builder(verifier, scope)
        .guard(origins)
        .audit(sink)
        .sessions(SqlSessions::new(app.state.pool().clone()))
        .clock(Arc::new(app.clock.clone()));
    let layer = match limiter {
        Some(limiter) => builder.shared_limiter(limiter),
        None => builder,
    }
    .build();
    let router = keysmith::gateway::Gateway::new(
        keysmith::gateway::proxy(upstream, roots_pem).expect("proxy"),
    )
    .layer(layer);
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        keysmith::gateway::serve_with(listener, router, &Default::default(), shutdown)
            .await
            .expect("gateway");
    });
    (base, flusher, task)
}

both_engines! {
    async fn gateway_injects_identity_and_refuses_bad_keys(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"]})).await;
        let plain = key["key"].as_str().expect("key");
        let (upstream, _events) = upstream().await;
        let gateway = gateway(&app, &upstream).await;

        let forged: HashMap<http::HeaderName, http::HeaderValue> = [("x-keysmith-service-user", "root"), ("x_keysmith_tenant", "globex"), ("connection", "x-keysmith-service-user")]
            .into_iter()
            .map(|(n, v)| (http::HeaderName::from_static(n), http::HeaderValue::from_static(v)))
            .collect();
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{gateway}/mcp")).auth_header(plain.to_owned()).custom_headers(forged);
        let client = ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await.expect("initialize through the gateway");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-service-user"], "ci-bot", "the injected header survived the proxy hop: {who}");
        assert_eq!(who["identity"]["x-keysmith-tenant"], "acme");
        assert_eq!(who["identity"].as_object().expect("identity").len(), 4, "{who}");
        assert_eq!(who["authorization_seen"], false);
        assert!(call_text(&client, "echo", json!({"text": "x"})).await.is_err(), "echo is outside the allowlist");
        let _ = client.cancel().await;

        let http = reqwest::Client::new();
        let post = |key: Option<&str>, body: Value| {
            let mut r = http.post(format!("{gateway}/mcp")).header("accept", "application/json, text/event-stream").json(&body);
            if let Some(key) = key {
                r = r.bearer_auth(key);
            }
            r.send()
        };
        assert_eq!(post(None, initialize()).await.expect("send").status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(Some("garbage"), initialize()).await.expect("send").status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(Some(plain), tool_call(3, "echo")).await.expect("send").status(), StatusCode::FORBIDDEN);
    }

    async fn gateway_streams_server_sent_events(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let (upstream, events) = upstream().await;
        let gateway = gateway(&app, &upstream).await;

        let mut response = reqwest::Client::new()
            .get(format!("{gateway}/events"))
            .bearer_auth(key["key"].as_str().expect("key"))
            .send()
            .await
            .expect("events");
        assert_eq!(response.status(), StatusCode::OK);
        events.send("one".into()).await.expect("send");
        // The first event arrives while the upstream still holds the second:
        // nothing waits for the end of the response.
        let first = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("first event in time").expect("chunk").expect("data");
        assert_eq!(std::str::from_utf8(&first).expect("utf-8"), "data: one\n\n");
        events.send("two".into()).await.expect("send");
        let second = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("second event in time").expect("chunk").expect("data");
        assert_eq!(std::str::from_utf8(&second).expect("utf-8"), "data: two\n\n");
    }
}
