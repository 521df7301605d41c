//! The verification layer in front of a real MCP server (rmcp), driven by the
//! real rmcp client and by raw HTTP for what a client library would not send.

use std::{collections::HashMap, sync::Arc, time::Duration};

use keysmith::{config::DatabaseUrl, db::Db};
use keysmith_verify::{
    RemoteVerifier, SqlVerifier, TenantScope, VerifyLayer,
    audit::{AuditFlusher, spawn_sql_audit},
};
use reqwest::StatusCode;
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, ClientConfig},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::{
    both_engines,
    helpers::{TestApp, expect_json},
};

#[path = "../../examples/mcp-server/demo.rs"]
pub mod demo;

pub enum Backend {
    Sql,
    Remote,
}

/// The demo MCP server on port 0, behind the layer.
pub struct McpServer {
    pub url: String,
    pub layer: VerifyLayer,
    pub verifier_db: Db,
    serving: Serving,
}

/// A server task a test can stop: told to stop, awaited (bounded), then its
/// queued audit events written. Dropped without [`Serving::stop`], it is
/// only told to stop.
#[derive(Debug)]
pub struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    flusher: Option<AuditFlusher>,
}

impl Serving {
    pub fn new(
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
        flusher: Option<AuditFlusher>,
    ) -> Self {
        Self {
            stop: Some(stop),
            task: Some(task),
            flusher,
        }
    }

    /// Stops serving, then writes every queued audit event.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(flusher) = self.flusher.take() {
            flusher.shutdown().await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl McpServer {
    pub async fn start(app: &TestApp, backend: Backend, ttl: Duration) -> Self {
        // Its own pool, as a separate process would have (and so it can be "stopped").
        let verifier_db = Db::connect(&DatabaseUrl::parse(&app.db.url).expect("url"))
            .await
            .expect("connect");
        let (layer, flusher) = match backend {
            Backend::Sql => {
                let verifier = SqlVerifier::new(
                    verifier_db.pool.clone(),
                    app.state.peppers.clone(),
                    Arc::new(app.clock.clone()),
                )
                .scoped_to_tenant(app.tenant.id.as_str());
                let (sink, flusher) = spawn_sql_audit(verifier_db.pool.clone(), 64, 256);
                let layer =
                    VerifyLayer::builder(verifier, TenantScope::only(app.tenant.slug.as_str()))
                        .cache_ttl(ttl)
                        .audit(sink)
                        .clock(Arc::new(app.clock.clone()))
                        .resource_metadata(
                            "https://mcp.example.com/.well-known/oauth-protected-resource",
                        )
                        .build();
                (layer, Some(flusher))
            }
            Backend::Remote => {
                let verifier =
                    RemoteVerifier::new(&app.base, app.admin_key.clone()).expect("client");
                (
                    VerifyLayer::builder(verifier, TenantScope::only(app.tenant.slug.as_str()))
                        .cache_ttl(ttl)
                        .clock(Arc::new(app.clock.clone()))
                        .build(),
                    None,
                )
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let router = demo::router(layer.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("mcp server");
        });
        Self {
            url,
            layer,
            verifier_db,
            serving: Serving::new(stop, task, flusher),
        }
    }

    /// Graceful shutdown: stop serving, then flush the audit queue.
    pub async fn shutdown(self) {
        self.serving.stop().await;
    }

    pub async fn client(
        &self,
        key: &str,
        headers: HashMap<http::HeaderName, http::HeaderValue>,
    ) -> Result<RunningService<RoleClient, ClientConfig>, String> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.clone())
            .auth_header(key.to_owned())
            .custom_headers(headers);
        ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(config))
            .await
            .map_err(|e| e.to_string())
    }

    /// A raw JSON-RPC POST, as any HTTP client could send it.
    pub async fn raw(
        &self,
        key: Option<&str>,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }
}

impl McpServer {
    /// The status `key` gets once it settles on `expected`, polling for up
    /// to five seconds: cache invalidation across instances is asynchronous,
    /// so wait for it, bounded, rather than assert a time.
    pub async fn status_settling_on(&self, key: &str, expected: StatusCode) -> StatusCode {
        let mut status = self.raw(Some(key), &initialize(), &[]).await.status();
        for _ in 0..100 {
            if status == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            status = self.raw(Some(key), &initialize(), &[]).await.status();
        }
        status
    }
}

pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
}

pub fn tool_call(id: i64, name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": {}}})
}

pub async fn call_text(
    client: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    args: Value,
) -> Result<String, String> {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    let result = client.call_tool(params).await.map_err(|e| e.to_string())?;
    let value = serde_json::to_value(&result).expect("serialize");
    Ok(value["content"][0]["text"]
        .as_str()
        .expect("text content")
        .to_owned())
}

async fn whoami(app: &TestApp, backend: Backend) {
    let su = app.create_service_user("ci-bot").await;
    let key = app
        .create_key(&su, json!({"allowed_tools": ["whoami", "echo"]}))
        .await;
    let mcp = McpServer::start(app, backend, Duration::from_secs(5)).await;
    let client = mcp
        .client(key["key"].as_str().expect("key"), HashMap::new())
        .await
        .expect("initialize");
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(
        names.contains(&"whoami".to_owned()) && names.contains(&"echo".to_owned()),
        "{names:?}"
    );

    let who: Value = serde_json::from_str(
        &call_text(&client, "whoami", json!({}))
            .await
            .expect("whoami"),
    )
    .expect("json");
    assert_eq!(who["identity"]["x-keysmith-service-user"], "ci-bot");
    assert_eq!(who["identity"]["x-keysmith-service-user-id"], su.as_str());
    assert_eq!(who["identity"]["x-keysmith-key-id"], key["id"]);
    assert_eq!(who["identity"]["x-keysmith-tenant"], "acme");
    assert_eq!(
        who["authorization_seen"], false,
        "the key never reaches the MCP server"
    );
    assert_eq!(
        call_text(&client, "echo", json!({"text": "hello"}))
            .await
            .expect("echo"),
        "hello"
    );
    let _ = client.cancel().await;
}

both_engines! {
    async fn valid_key_calls_tools_sql_backend(app: TestApp) {
        whoami(&app, Backend::Sql).await;
    }

    async fn valid_key_calls_tools_remote_backend(app: TestApp) {
        whoami(&app, Backend::Remote).await;
    }

    async fn forged_identity_headers_never_reach_the_tool(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let mcp = McpServer::start(&app, Backend::Sql, Duration::from_secs(5)).await;
        let forged: HashMap<http::HeaderName, http::HeaderValue> = [
            ("x-keysmith-service-user", "root"),
            ("x_keysmith_service_user", "root"),
            ("x-keysmith-tenant", "globex"),
            ("x-keysmith-anything", "forged"),
        ]
        .into_iter()
        .map(|(n, v)| (http::HeaderName::from_static(n), http::HeaderValue::from_static(v)))
        .collect();
        let client = mcp.client(key["key"].as_str().expect("key"), forged).await.expect("initialize");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        let identity = who["identity"].as_object().expect("identity");
        assert_eq!(identity.len(), 4, "only the four injected headers: {identity:?}");
        assert_eq!(identity["x-keysmith-service-user"], "ci-bot");
        assert_eq!(identity["x-keysmith-tenant"], "acme");
        let _ = client.cancel().await;

        // `Connection: x-keysmith-service-user` would make a proxy drop the injected header.
        let res = mcp.raw(key["key"].as_str(), &initialize(), &[("connection", "x-keysmith-service-user")]).await;
        assert_eq!(res.status(), StatusCode::OK, "the request itself is fine");
    }

    async fn bad_keys_are_401(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let expiring = app.create_key(&su, json!({"expires_in_days": 1})).await;
        let revoked = app.create_key(&su, json!({})).await;
        let globex = app.create_tenant("globex").await;
        let other_tenant_key = app.management_key(&globex).await;
        let mcp = McpServer::start(&app, Backend::Sql, Duration::ZERO).await;

        let res = mcp.raw(None, &initialize(), &[]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = res.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        assert!(challenge.starts_with("Bearer resource_metadata=\"https://"), "{challenge}");
        let unknown = keysmith_verify::ApiKey::generate(&keysmith_verify::KeyPrefix::default());
        for bad in ["garbage", "ks_AAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAA", unknown.expose(), other_tenant_key.as_str()] {
            assert_eq!(mcp.raw(Some(bad), &initialize(), &[]).await.status(), StatusCode::UNAUTHORIZED, "{bad}");
        }
        assert!(mcp.client("garbage", HashMap::new()).await.is_err(), "the rmcp client cannot connect either");

        let revoked_key = revoked["key"].as_str().expect("key");
        assert_eq!(mcp.raw(Some(revoked_key), &initialize(), &[]).await.status(), StatusCode::OK);
        expect_json(app.revoke_key(revoked["id"].as_str().expect("id"), "leaked").await, StatusCode::OK).await;
        assert_eq!(mcp.raw(Some(revoked_key), &initialize(), &[]).await.status(), StatusCode::UNAUTHORIZED, "revocation applies to the next request");

        app.clock.advance(time::Duration::days(1));
        assert_eq!(mcp.raw(expiring["key"].as_str(), &initialize(), &[]).await.status(), StatusCode::UNAUTHORIZED);
    }

    async fn remote_backend_refuses_bad_keys_and_tools(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"]})).await;
        let revoked = app.create_key(&su, json!({})).await;
        expect_json(app.revoke_key(revoked["id"].as_str().expect("id"), "leaked").await, StatusCode::OK).await;
        let globex = app.create_tenant("globex").await;
        let other_tenant_key = app.management_key(&globex).await;
        let mcp = McpServer::start(&app, Backend::Remote, Duration::ZERO).await;
        for bad in ["garbage", revoked["key"].as_str().expect("key"), other_tenant_key.as_str()] {
            assert_eq!(mcp.raw(Some(bad), &initialize(), &[]).await.status(), StatusCode::UNAUTHORIZED, "{bad}");
        }
        let plain = key["key"].as_str().expect("key");
        assert_eq!(mcp.raw(Some(plain), &initialize(), &[]).await.status(), StatusCode::OK);
        assert_eq!(mcp.raw(Some(plain), &tool_call(5, "echo"), &[]).await.status(), StatusCode::FORBIDDEN);
    }

    async fn remote_backend_unreachable_is_503(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let mcp = McpServer::start(&app, Backend::Remote, Duration::ZERO).await;
        app.stop().await;
        assert_eq!(mcp.raw(key["key"].as_str(), &initialize(), &[]).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    async fn cache_invalidation_on_this_instance(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let plain = key["key"].as_str().expect("key");
        let mcp = McpServer::start(&app, Backend::Sql, Duration::from_secs(3600)).await;
        assert_eq!(mcp.raw(Some(plain), &initialize(), &[]).await.status(), StatusCode::OK);
        expect_json(app.revoke_key(key["id"].as_str().expect("id"), "leaked").await, StatusCode::OK).await;
        assert_eq!(mcp.raw(Some(plain), &initialize(), &[]).await.status(), StatusCode::OK, "cached: the TTL is the worst case");
        mcp.layer.invalidate_key(key["id"].as_str().expect("id"));
        assert_eq!(mcp.raw(Some(plain), &initialize(), &[]).await.status(), StatusCode::UNAUTHORIZED);
    }

    async fn rotated_key_works_until_its_cutoff(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let old = app.create_key(&su, json!({})).await;
        let rotation = expect_json(app.rotate_key(old["id"].as_str().expect("id")).await, StatusCode::CREATED).await;
        let mcp = McpServer::start(&app, Backend::Sql, Duration::from_secs(5)).await;
        let cutoff = app.now() + time::Duration::days(7);
        app.clock.set(cutoff - time::Duration::seconds(1));
        assert_eq!(mcp.raw(old["key"].as_str(), &initialize(), &[]).await.status(), StatusCode::OK);
        app.clock.set(cutoff + time::Duration::seconds(1));
        // The cache never outlives the key's own cutoff.
        assert_eq!(mcp.raw(old["key"].as_str(), &initialize(), &[]).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(mcp.raw(rotation["new"]["key"].as_str(), &initialize(), &[]).await.status(), StatusCode::OK);
    }

    async fn tools_outside_the_allowlist_and_name_mismatches_are_refused(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["who*"]})).await;
        let plain = key["key"].as_str().expect("key");
        let mcp = McpServer::start(&app, Backend::Sql, Duration::from_secs(5)).await;

        let client = mcp.client(plain, HashMap::new()).await.expect("initialize");
        assert!(call_text(&client, "whoami", json!({})).await.is_ok());
        let refused = call_text(&client, "echo", json!({"text": "x"})).await;
        assert!(refused.is_err(), "echo is not in the allowlist");
        let _ = client.cancel().await;

        let res = mcp.raw(Some(plain), &tool_call(42, "echo"), &[]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let body: Value = res.json().await.expect("json-rpc error");
        assert_eq!(body["id"], 42, "the error answers the request id");
        assert_eq!(body["error"]["code"], -32001);

        let res = mcp.raw(Some(plain), &tool_call(7, "whoami"), &[("mcp-name", "echo")]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let batch = json!([tool_call(1, "whoami"), tool_call(2, "echo")]);
        assert_eq!(mcp.raw(Some(plain), &batch, &[]).await.status(), StatusCode::BAD_REQUEST);
        mcp.shutdown().await;

        let audit = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}/audit?limit=200", key["id"].as_str().expect("id"))).await, StatusCode::OK).await;
        let denied: Vec<_> = audit["items"].as_array().expect("items").iter().filter(|e| e["outcome"] == "denied").collect();
        // Newest first: the batch, the mismatched Mcp-Name, the two echo calls.
        let reasons: Vec<&str> = denied.iter().map(|e| e["reason"].as_str().expect("reason")).collect();
        assert_eq!(reasons, ["bad_request", "header_mismatch", "tool_not_allowed", "tool_not_allowed"], "every refusal is audited: {denied:?}");
        assert!(denied[2..].iter().all(|e| e["tool"] == "echo"), "{denied:?}");
    }

    async fn database_down_is_503_never_a_pass(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let mcp = McpServer::start(&app, Backend::Sql, Duration::ZERO).await;
        mcp.verifier_db.pool.close().await;
        let res = mcp.raw(key["key"].as_str(), &initialize(), &[]).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    async fn audit_and_usage_match_the_calls_across_shutdown(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "echo"]})).await;
        let id = key["id"].as_str().expect("id").to_owned();
        let mcp = McpServer::start(&app, Backend::Sql, Duration::from_secs(5)).await;
        let client = mcp.client(key["key"].as_str().expect("key"), HashMap::new()).await.expect("initialize");
        for _ in 0..5 {
            call_text(&client, "whoami", json!({})).await.expect("whoami");
        }
        for i in 0..3 {
            call_text(&client, "echo", json!({"text": format!("{i}")})).await.expect("echo");
        }
        let _ = client.cancel().await;
        assert_eq!(mcp.raw(key["key"].as_str(), &tool_call(9, "forbidden_tool"), &[]).await.status(), StatusCode::FORBIDDEN);
        mcp.shutdown().await;

        let usage = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}/usage")).await, StatusCode::OK).await;
        let tools: HashMap<String, (i64, i64)> = usage["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| (t["tool"].as_str().expect("tool").to_owned(), (t["calls"].as_i64().expect("calls"), t["denied"].as_i64().expect("denied"))))
            .collect();
        assert_eq!(tools["whoami"], (5, 0), "{tools:?}");
        assert_eq!(tools["echo"], (3, 0));
        assert_eq!(tools["forbidden_tool"], (1, 1));
        assert!(usage["last_used_at"].is_string(), "last use recorded: {usage}");
    }
}

/// Another instance: PostgreSQL, a layer with its own cache (an hour's TTL)
/// that listens for `NOTIFY`, and a key of a service user it has cached.
struct AnotherInstance {
    su: String,
    key: Value,
    mcp: McpServer,
    listener: tokio::task::JoinHandle<()>,
}

async fn another_instance_with_a_cached_key() -> (TestApp, AnotherInstance) {
    let app = TestApp::spawn(crate::helpers::Engine::Postgres).await;
    let su = app.create_service_user("ci-bot").await;
    let key = app.create_key(&su, json!({})).await;
    let mcp = McpServer::start(&app, Backend::Sql, Duration::from_secs(3600)).await;
    let listener =
        keysmith_verify::backend::invalidation::listen_postgres(&app.db.url, mcp.layer.clone())
            .await
            .expect("listen");
    let plain = key["key"].as_str().expect("key");
    assert_eq!(
        mcp.raw(Some(plain), &initialize(), &[]).await.status(),
        StatusCode::OK,
        "cached now"
    );
    let instance = AnotherInstance {
        su,
        key,
        mcp,
        listener,
    };
    (app, instance)
}

/// PostgreSQL only: a revoke on the server reaches another instance's cache
/// through `NOTIFY`, long before the cache TTL (an hour here) would.
#[tokio::test]
async fn postgres_notify_invalidates_other_instances() {
    let (
        app,
        AnotherInstance {
            key, mcp, listener, ..
        },
    ) = another_instance_with_a_cached_key().await;
    let plain = key["key"].as_str().expect("key");
    expect_json(
        app.revoke_key(key["id"].as_str().expect("id"), "leaked")
            .await,
        StatusCode::OK,
    )
    .await;
    let status = mcp
        .status_settling_on(plain, StatusCode::UNAUTHORIZED)
        .await;
    listener.abort();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the notification invalidated the cached key"
    );
}

both_engines! {
    async fn audit_queue_loses_nothing_on_shutdown(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        // A tiny batch size and a full queue at shutdown: everything queued is written.
        let (sink, flusher) = spawn_sql_audit(app.state.pool().clone(), 3, 1000);
        let record = keysmith_verify::audit::AuditRecord {
            tenant_id: app.tenant.id.as_str().into(),
            key_id: key["id"].as_str().expect("id").into(),
            service_user_id: su.as_str().into(),
            grant_id: None,
            client_id: None,
            tool: "whoami".into(),
            allowed: true,
            reason: "valid",
            request_id: None,
            at: app.now(),
            status: Some(200),
            duration_us: Some(1500),
        };
        for _ in 0..500 {
            sink.record(record.clone()).await;
        }
        assert_eq!(flusher.shutdown().await, 500);
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call'")
            .fetch_one(app.state.pool())
            .await
            .expect("count");
        assert_eq!(count, 500);
    }
}

/// An audited call as read back: tool, actor, outcome, reason, request id,
/// status, duration (µs).
type AuditedCall = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

both_engines! {
    async fn audit_batches_keep_every_field_of_every_call(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        // Batches as large as the queue: on SQLite they go in 32 rows per
        // statement and the rest one by one; each call's fields stay its own.
        let (sink, flusher) = spawn_sql_audit(app.state.pool().clone(), 4096, 8192);
        let calls = 75_i64;
        let mut expected: Vec<AuditedCall> = Vec::new();
        for n in 0..calls {
            let record = keysmith_verify::audit::AuditRecord {
                tenant_id: app.tenant.id.as_str().into(),
                key_id: key_id.into(),
                service_user_id: su.as_str().into(),
                grant_id: None,
                client_id: None,
                tool: format!("tool-{n:03}"),
                allowed: n % 3 != 0,
                reason: if n % 3 == 0 { "tool_not_allowed" } else { "valid" },
                request_id: (n % 2 == 0).then(|| format!("req-{n}")),
                at: app.now(),
                status: (n % 5 != 0).then(|| 200 + u16::try_from(n).expect("small")),
                duration_us: (n % 7 != 0).then(|| u64::try_from(n * 1000).expect("positive")),
            };
            expected.push((
                record.tool.clone(),
                format!("key:{key_id}"),
                if record.allowed { "allowed" } else { "denied" }.to_owned(),
                record.reason.to_owned(),
                record.request_id.clone(),
                record.status.map(i64::from),
                record.duration_us.map(|us| i64::try_from(us).expect("small")),
            ));
            sink.record(record).await;
        }
        assert_eq!(flusher.shutdown().await, 75);
        let written: Vec<AuditedCall> = sqlx::query_as(
            "SELECT tool, actor, outcome, reason, request_id, CAST(status AS BIGINT), duration_us \
             FROM audit_events WHERE action = 'tool.call' AND tenant_id = $1 AND key_id = $2 ORDER BY tool",
        )
        .bind(app.tenant.id.as_str())
        .bind(key_id)
        .fetch_all(app.state.pool())
        .await
        .expect("rows");
        assert_eq!(written, expected);
    }
}

#[tokio::test]
async fn a_disabled_service_user_is_refused_by_other_instances_at_once() {
    let (
        app,
        AnotherInstance {
            su,
            key,
            mcp,
            listener,
        },
    ) = another_instance_with_a_cached_key().await;
    let plain = key["key"].as_str().expect("key");
    expect_json(
        app.post(
            &format!("/api/v1/tenants/acme/service-users/{su}/disable"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        mcp.status_settling_on(plain, StatusCode::UNAUTHORIZED)
            .await,
        StatusCode::UNAUTHORIZED,
        "the cached key of a disabled service user is dropped"
    );
    expect_json(
        app.post(
            &format!("/api/v1/tenants/acme/service-users/{su}/enable"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let status = mcp.status_settling_on(plain, StatusCode::OK).await;
    listener.abort();
    assert_eq!(
        status,
        StatusCode::OK,
        "enabled again, the refusal is not remembered"
    );
}
