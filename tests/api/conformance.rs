//! Third-party MCP servers and clients (official TS and Python SDKs, rmcp)
//! through `keysmith gateway`: what real clients see, what real servers run,
//! and what the audit says about it. One server process per test; the
//! clients run one after another against it, each with its own key.

pub mod harness;
mod limits;
mod suite;

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, NumberOrString, ProgressNotificationParam, ProgressToken,
        RequestMetaObject,
    },
    service::NotificationContext,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use self::harness::{CliClient, Gateway, Program, Upstream, audit_rows, key_for};
use crate::{both_engines, helpers::TestApp, mcp::demo};

/// What every test key may call.
const ALLOWED: [&str; 3] = ["echo", "whoami", "progress"];
/// The tools a `basic` run calls.
const TOOL_NAMES: [&str; 4] = ["echo", "whoami", "secret_admin", "progress"];
const SERVICE_USER: &str = "conformance-bot";

/// A client the tests drive: a child process, or rmcp in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Cli(CliClient),
    Rmcp,
}

const CLIENTS: [Client; 3] = [
    Client::Cli(CliClient::Ts),
    Client::Cli(CliClient::Py),
    Client::Rmcp,
];

impl Client {
    async fn run(self, url: &str, scenario: &str, key: &str) -> Value {
        match self {
            Self::Cli(cli) => cli.run(url, scenario, key).await,
            Self::Rmcp => rmcp_run(url, scenario, key).await,
        }
    }
}

/// An rmcp client handler that notes when each progress notification arrives.
#[derive(Debug, Clone, Default)]
struct ProgressRecorder {
    at: Arc<Mutex<Vec<Instant>>>,
}

impl ClientHandler for ProgressRecorder {
    fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.at.lock().expect("lock").push(Instant::now());
        std::future::ready(())
    }
}

/// One `tools/call` as a report entry.
async fn rmcp_call(
    client: &rmcp::service::RunningService<RoleClient, ProgressRecorder>,
    params: CallToolRequestParams,
) -> Value {
    let tool = params.name.to_string();
    match client.call_tool(params).await {
        Ok(result) => {
            let value = serde_json::to_value(&result).expect("serialize");
            let text = value["content"][0]["text"].clone();
            if value["isError"] == true {
                json!({"tool": tool, "ok": false, "error": text})
            } else {
                json!({"tool": tool, "ok": true, "text": text})
            }
        }
        Err(err) => json!({"tool": tool, "ok": false, "error": err.to_string()}),
    }
}

/// The rmcp client, reporting in the same shape as the CLI clients.
async fn rmcp_run(url: &str, scenario: &str, key: &str) -> Value {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if !key.is_empty() {
        config = config.auth_header(key.to_owned());
    }
    let mut report = json!({"initialize": null, "tools": null, "calls": [], "progress": []});
    let recorder = ProgressRecorder::default();
    let client = match recorder
        .clone()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
    {
        Ok(client) => client,
        Err(err) => {
            report["initialize"] =
                json!({"error": err.to_string(), "status": null, "www_authenticate": null});
            return report;
        }
    };
    report["initialize"] = json!("ok");
    if scenario == "basic" {
        if let Ok(tools) = client.list_all_tools().await {
            report["tools"] = tools.iter().map(|t| json!(t.name)).collect();
        }
        let mut calls = Vec::new();
        for (tool, args) in [
            ("echo", json!({"text": "hi"})),
            ("whoami", json!({})),
            ("secret_admin", json!({})),
        ] {
            let mut params = CallToolRequestParams::new(tool.to_owned());
            if let Value::Object(map) = args {
                params = params.with_arguments(map);
            }
            calls.push(rmcp_call(&client, params).await);
        }
        report["calls"] = Value::Array(calls);
    } else if scenario == "progress" {
        let mut params = CallToolRequestParams::new("progress");
        if let Value::Object(map) = json!({"steps": 3}) {
            params = params.with_arguments(map);
        }
        params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
            NumberOrString::Number(1),
        )));
        let start = Instant::now();
        report["calls"] = json!([rmcp_call(&client, params).await]);
        report["progress"] = recorder
            .at
            .lock()
            .expect("lock")
            .iter()
            .map(|at| json!(at.duration_since(start).as_millis()))
            .collect();
    }
    let _ = client.cancel().await;
    report
}

/// The server behind the gateway.
struct Target {
    base: String,
    /// The conformance server process (none for the in-process rmcp demo).
    process: Option<Upstream>,
    /// The tools it offers.
    offers: &'static [&'static str],
}

impl Target {
    async fn program(program: Program) -> Self {
        let process = Upstream::start(program).await;
        Self {
            base: process.base.clone(),
            process: Some(process),
            offers: &["echo", "whoami", "progress", "secret_admin"],
        }
    }

    /// The rmcp demo server (`echo`, `whoami`), unprotected, in this process.
    async fn rmcp_demo() -> Self {
        let app = axum::Router::new().nest_service("/mcp", demo::mcp_service());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream") });
        Self {
            base,
            process: None,
            offers: &["echo", "whoami"],
        }
    }

    fn has_progress(&self) -> bool {
        self.offers.contains(&"progress")
    }
}

/// `(service user, tenant, key id)` from a `whoami` answer: the conformance
/// servers' flat JSON, or the rmcp demo's `identity` map.
fn identity(text: &str) -> (Value, Value, Value) {
    let who: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("whoami: {text}"));
    if who.get("identity").is_some() {
        let id = &who["identity"];
        (
            id["x-keysmith-service-user"].clone(),
            id["x-keysmith-tenant"].clone(),
            id["x-keysmith-key-id"].clone(),
        )
    } else {
        (
            who["service_user"].clone(),
            who["tenant"].clone(),
            who["key_id"].clone(),
        )
    }
}

fn check_basic(label: &str, report: &Value, target: &Target, key_id: &str) {
    assert_eq!(report["initialize"], "ok", "{label}: {report}");
    let mut tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: no tools/list answer: {report}"))
        .iter()
        .map(|t| t.as_str().expect("tool name"))
        .collect();
    tools.sort_unstable();
    let mut expected: Vec<&str> = target
        .offers
        .iter()
        .copied()
        .filter(|t| ALLOWED.contains(t))
        .collect();
    expected.sort_unstable();
    assert_eq!(
        tools, expected,
        "{label}: tools/list filtered to the allowlist"
    );

    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 3, "{label}: {report}");
    assert_eq!(
        calls[0],
        json!({"tool": "echo", "ok": true, "text": "hi"}),
        "{label}"
    );
    assert_eq!(calls[1]["ok"], true, "{label}: whoami: {}", calls[1]);
    let (user, tenant, key) = identity(calls[1]["text"].as_str().expect("whoami text"));
    assert_eq!(
        (user, tenant, key),
        (json!(SERVICE_USER), json!("acme"), json!(key_id)),
        "{label}: the gateway's injected identity"
    );
    let refused = &calls[2];
    assert_eq!(refused["ok"], false, "{label}: secret_admin ran: {refused}");
    // The Python SDK keeps a 4xx body apart from its message.
    let said = format!("{} {}", refused["error"], refused["body"]);
    assert!(
        said.contains("secret_admin"),
        "{label}: the refusal names the tool: {refused}"
    );
    if refused.get("status").is_some() {
        assert_eq!(refused["status"], 403, "{label}: {refused}");
    }
}

/// Refused before anything reached the server: 401 with a Bearer challenge.
fn check_unauthorized(label: &str, client: Client, report: &Value) {
    let init = &report["initialize"];
    assert_ne!(init, "ok", "{label}: initialize passed: {report}");
    assert!(
        report["tools"].is_null() && report["calls"] == json!([]),
        "{label}: {report}"
    );
    match client {
        Client::Cli(_) => {
            assert_eq!(init["status"], 401, "{label}: {report}");
            let challenge = init["www_authenticate"].as_str().unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{label}: {report}");
        }
        // rmcp reports a challenged 401 as "auth required" with no status.
        Client::Rmcp => {
            let error = init["error"].as_str().unwrap_or_default().to_lowercase();
            assert!(error.contains("auth"), "{label}: {report}");
        }
    }
}

/// A key of another tenant (`other`), made through its own management key:
/// `(tenant id, key id, key)`.
async fn other_tenant_key(app: &TestApp) -> (String, String, String) {
    let other = app.create_tenant("other").await;
    let admin = app.management_key(&other).await;
    let res = app
        .post_as(
            &admin,
            "/api/v1/tenants/other/service-users",
            &json!({"name": SERVICE_USER, "owner_email": "bot@other.test"}),
        )
        .await;
    let su = crate::helpers::expect_json(res, reqwest::StatusCode::CREATED).await;
    let res = app
        .post_as(
            &admin,
            "/api/v1/tenants/other/keys",
            &json!({"service_user_id": su["id"], "name": "elsewhere", "allowed_tools": ALLOWED}),
        )
        .await;
    let key = crate::helpers::expect_json(res, reqwest::StatusCode::CREATED).await;
    (
        other.id.to_string(),
        key["id"].as_str().expect("id").to_owned(),
        key["key"].as_str().expect("key").to_owned(),
    )
}

/// Every scenario, every client, one server.
async fn conformance(app: &TestApp, target: Target) {
    let su = app.create_service_user(SERVICE_USER).await;
    let gateway = Gateway::start(app, &target.base).await;
    let url = gateway.mcp();

    let mut basic_keys = Vec::new();
    for client in CLIENTS {
        let label = format!("{client:?} basic");
        let (key_id, key) = key_for(app, &su, &format!("{client:?}-basic"), &ALLOWED).await;
        let report = client.run(&url, "basic", &key).await;
        check_basic(&label, &report, &target, &key_id);
        basic_keys.push((label, key_id));
    }

    let (other_tenant, other_key_id, other_key) = other_tenant_key(app).await;
    for client in CLIENTS {
        let report = client.run(&url, "initialize", "").await;
        check_unauthorized(&format!("{client:?} without a key"), client, &report);
        let report = client.run(&url, "initialize", &other_key).await;
        check_unauthorized(&format!("{client:?} other tenant"), client, &report);
    }
    let res = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&crate::mcp::initialize())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(challenge.starts_with("Bearer"), "{challenge}");

    let mut progress_keys = Vec::new();
    if target.has_progress() {
        for client in CLIENTS {
            let label = format!("{client:?} progress");
            let (key_id, key) = key_for(app, &su, &label.replace(' ', "-"), &ALLOWED).await;
            let report = client.run(&url, "progress", &key).await;
            assert_eq!(report["initialize"], "ok", "{label}: {report}");
            assert_eq!(
                report["calls"],
                json!([{"tool": "progress", "ok": true, "text": "done"}]),
                "{label}"
            );
            let at: Vec<i64> = report["progress"]
                .as_array()
                .expect("progress")
                .iter()
                .map(|ms| ms.as_i64().expect("ms"))
                .collect();
            assert_eq!(at.len(), 3, "{label}: three notifications: {report}");
            // Sent 150 ms apart (300 ms in all); a relay that buffered them
            // would deliver all three within a few ms. One interval of
            // spread proves streaming and leaves room for a loaded machine
            // delaying the first one (seen: 241 ms under load).
            assert!(
                at[2] - at[0] >= 150,
                "{label}: notifications arrive as they are sent, not at the end: {at:?}"
            );
            progress_keys.push((label, key_id));
        }
    }

    gateway.stop().await;
    for (label, key_id) in &basic_keys {
        check_audit(
            label,
            &audit_rows(app, key_id).await,
            &[
                ("echo", "allowed"),
                ("whoami", "allowed"),
                ("secret_admin", "denied"),
            ],
        );
    }
    for (label, key_id) in &progress_keys {
        check_audit(
            label,
            &audit_rows(app, key_id).await,
            &[("progress", "allowed")],
        );
    }
    assert_eq!(
        audit_rows(app, &other_key_id).await,
        vec![],
        "another tenant's key is audited nowhere"
    );
    let (stray,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND action = 'tool.call'",
    )
    .bind(&other_tenant)
    .fetch_one(app.state.pool())
    .await
    .expect("count");
    assert_eq!(stray, 0, "no gateway audit row in the other tenant");

    if let Some(process) = &target.process {
        let mut ran = process.ran();
        ran.sort();
        let mut expected = Vec::new();
        for (tool, times) in [
            ("echo", 3),
            ("whoami", 3),
            ("progress", progress_keys.len()),
        ] {
            expected.extend(std::iter::repeat_n(
                (tool.to_owned(), SERVICE_USER.to_owned()),
                times,
            ));
        }
        expected.sort();
        assert_eq!(
            ran, expected,
            "what ran upstream, as whom (secret_admin never)"
        );
    }
}

/// The tool calls of the audit are exactly `calls`, the only denials are
/// `tool_not_allowed` ones among them, and the rest is the protocol's own
/// traffic, allowed.
fn check_audit(label: &str, rows: &[harness::AuditRow], calls: &[(&str, &str)]) {
    let tool_rows: Vec<(&str, &str)> = rows
        .iter()
        .filter(|(tool, ..)| TOOL_NAMES.contains(&tool.as_str()))
        .map(|(tool, outcome, _)| (tool.as_str(), outcome.as_str()))
        .collect();
    assert_eq!(
        tool_rows, calls,
        "{label}: audit of the tool calls: {rows:?}"
    );
    for (tool, outcome, reason) in rows {
        let expected_reason = if outcome == "denied" {
            "tool_not_allowed"
        } else {
            "valid"
        };
        assert_eq!(reason, expected_reason, "{label}: {tool}: {rows:?}");
    }
    let count = |name: &str| rows.iter().filter(|(tool, ..)| tool == name).count();
    assert_eq!(count("initialize"), 1, "{label}: {rows:?}");
    for (tool, outcome, _) in rows {
        assert!(
            TOOL_NAMES.contains(&tool.as_str())
                || matches!(
                    tool.as_str(),
                    "initialize" | "notifications/initialized" | "tools/list"
                )
                || ((tool.starts_with("GET ") || tool.starts_with("DELETE "))
                    && outcome == "allowed"),
            "{label}: unexpected audit row {tool} {outcome}: {rows:?}"
        );
    }
}

both_engines! {
    async fn ts_sdk_server(app: TestApp) {
        conformance(&app, Target::program(Program::TsServer).await).await;
    }

    async fn python_sdk_server(app: TestApp) {
        conformance(&app, Target::program(Program::PyServer).await).await;
    }

    async fn rmcp_demo_server(app: TestApp) {
        conformance(&app, Target::rmcp_demo().await).await;
    }
}
