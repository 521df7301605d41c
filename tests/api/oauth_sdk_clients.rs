//! OAuth end to end with the official TypeScript SDK client's own OAuth
//! support (`tests/conformance/oauth_client.mjs`) through the real
//! `keysmith gateway --resource` to an MCP server: discovery from the 401,
//! dynamic registration, PKCE, consent by a person in headless Chromium,
//! the token, a tool call allowed, a request outside the approved scopes
//! refused, and a refresh. And the official conformance suite's
//! authorization-server scenarios against a tenant's issuer, its
//! authorization URL answered by a person in Chromium.

use std::{process::Stdio, time::Duration};

use keysmith::domain::people::accounts::Role;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    admin::admin_user, both_engines, child::Running, chromium::Browser,
    conformance::harness::conformance_dir, gateway::upstream, helpers::TestApp,
    oauth_consent_browser::sign_in_to_answer,
};

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// The client's next line of output (bounded: a client that went quiet fails the test).
async fn next_line(lines: &mut Lines) -> String {
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the client went quiet")
        .expect("read")
        .expect("a line")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The app again on a known address, so its issuer is reachable as announced.
async fn on_known_address(app: TestApp) -> (TestApp, String) {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let clock = app.clock.clone();
    let db = app.stop().await;
    let env = [("KEYSMITH_PUBLIC_URL", public.clone())];
    let app = TestApp::spawn_at(db, &env, Some(clock), &format!("127.0.0.1:{port}")).await;
    (app, public)
}

/// Signs `owner@acme.test` in at `authorize` and approves as shown, after
/// unticking `untick`.
async fn consent(b: &Browser, authorize: &str, client_name: &str, untick: &[&str]) {
    sign_in_to_answer(b, authorize, "owner@acme.test").await;
    b.wait_for_text(&format!("Connect {client_name}?")).await;
    for scope in untick {
        b.click(&format!("input[value='{scope}']")).await;
    }
    b.click("button[value=approve]").await;
}

/// `keysmith gateway --resource` on a free port in front of `upstream`,
/// announcing the issuer under `public`: the process and its resource URL.
fn gateway_at(app: &TestApp, upstream: &str, public: &str) -> (Running, String) {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let bind = format!("127.0.0.1:{port}");
    let gateway = Running::gateway(
        app,
        upstream,
        &["--bind", &bind, "--resource", &resource],
        &[("KEYSMITH_PUBLIC_URL", public)],
        None,
    );
    assert_eq!(gateway.base, format!("http://{bind}"));
    (gateway, resource)
}

/// Starts `command` (run in the conformance directory) with its output
/// read line by line; it dies with the test.
fn start(mut command: tokio::process::Command) -> (tokio::process::Child, Lines) {
    let mut child = command
        .current_dir(conformance_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start a client");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

/// The SDK client's first line: the authorization URL it would open.
async fn authorization_url(lines: &mut Lines, issuer: &str) -> String {
    let first = next_line(lines).await;
    let authorize = first
        .strip_prefix("AUTHORIZE ")
        .unwrap_or_else(|| panic!("expected the authorization URL, got {first}"));
    assert!(
        authorize.starts_with(&format!("{issuer}/authorize?")),
        "{authorize}"
    );
    authorize.to_owned()
}

/// A person approves tools only (resources and prompts stay out of the
/// grant) in Chromium, and the SDK client's callback page says so.
async fn approve_tools_in_chromium(label: &str, authorize: &str, client_name: &str) {
    let browser = Browser::start(label).await;
    let b = &browser;
    browser
        .run(Duration::from_secs(120), async {
            consent(b, authorize, client_name, &["resources:*", "prompts:*"]).await;
            b.wait_for_text("Connected").await;
        })
        .await;
}

/// The whoami answer of the upstream, acting as the service user `agent`.
fn acts_as_agent(whoami: &Value) -> bool {
    whoami
        .as_str()
        .is_some_and(|w| w.contains(r#""x-keysmith-service-user":"agent""#))
}

/// The SDK client's `RESULT` line, checked for what every SDK client must
/// show: registered dynamically, granted tools only, the tools listed, a
/// call as the service user, and a rotating refresh that keeps working.
async fn sdk_result(lines: &mut Lines) -> Value {
    let result = loop {
        let line = next_line(lines).await;
        if let Some(json) = line.strip_prefix("RESULT ") {
            break serde_json::from_str::<Value>(json).expect("json");
        }
    };
    assert!(result.get("error").is_none(), "{result:#}");
    assert!(
        result["client_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("kc_")),
        "registered dynamically: {result}"
    );
    assert_eq!(result["scope"], "tools:*", "{result}");
    assert_eq!(result["tools"], serde_json::json!(["echo", "whoami"]));
    assert!(acts_as_agent(&result["whoami"]), "{result}");
    assert!(acts_as_agent(&result["after_refresh"]), "{result}");
    assert_eq!(result["refresh_rotated"], true, "{result}");
    result
}

/// Every check of every `checks.json` under `out`: (scenario dir, id, status).
fn conformance_checks(out: &std::path::Path) -> Vec<(String, String, String)> {
    let mut checks = Vec::new();
    for entry in std::fs::read_dir(out).expect("results") {
        let dir = entry.expect("entry").path();
        let Ok(text) = std::fs::read_to_string(dir.join("checks.json")) else {
            continue;
        };
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for check in serde_json::from_str::<Vec<Value>>(&text).expect("checks.json") {
            let id = check["id"].as_str().unwrap_or("?").to_owned();
            let status = check["status"].as_str().unwrap_or("?").to_owned();
            checks.push((name.clone(), id, status));
        }
    }
    checks
}

both_engines! {
    async fn the_conformance_suite_authorization_scenarios_pass_against_a_tenants_issuer(app: TestApp) {
        let (app, public) = on_known_address(app).await;
        let issuer = format!("{public}/oauth/acme");
        app.create_service_user("agent").await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        let client_id = crate::oauth_register::register_public(&app, &["http://127.0.0.1/callback"]).await;
        let out = tempfile::tempdir().expect("temp dir");
        let port = free_port().to_string();
        let mut command = tokio::process::Command::new("node");
        command.arg(conformance_dir().join("conformance.mjs"))
            .args(["authorization", "--url", &issuer, "--client-id", &client_id])
            .args(["--resource", "https://mcp.example.com/mcp", "--port", &port, "-o"])
            .arg(out.path());
        let (mut suite, mut lines) = start(command);
        let mut printed = Vec::new();
        let authorize = loop {
            let line = next_line(&mut lines).await;
            if line.starts_with(&format!("{issuer}/authorize?")) {
                break line;
            }
            printed.push(line);
            assert!(printed.len() < 200, "no authorization URL: {printed:#?}");
        };
        let label = format!("oauth-suite-{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            consent(b, &authorize, "Test client", &[]).await;
            b.wait_for_text("OK").await;
        }).await;
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.expect("the suite ends") {
            printed.push(line);
        }
        let _ = suite.wait().await;
        let checks = conformance_checks(out.path());
        for scenario in ["authorization-server-metadata-endpoint", "authorization-code-grant"] {
            let dir = format!("authorization-server-{scenario}-");
            assert!(checks.iter().any(|(name, _, _)| name.starts_with(&dir)), "{scenario} not run: {checks:#?}\n{printed:#?}");
        }
        assert!(checks.iter().any(|(_, id, _)| id == "authorization-code-grant"), "{checks:#?}");
        let failed: Vec<_> = checks.iter().filter(|(_, _, status)| status != "SUCCESS").collect();
        assert!(failed.is_empty(), "{failed:#?}\n{printed:#?}");
    }

    async fn the_typescript_sdk_client_connects_through_the_gateway_with_oauth(app: TestApp) {
        let (app, public) = on_known_address(app).await;
        let issuer = format!("{public}/oauth/acme");
        app.create_service_user("agent").await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        let (upstream, _events) = upstream().await;
        let (gateway, resource) = gateway_at(&app, &upstream, &public);

        let mut command = tokio::process::Command::new("node");
        command.arg(conformance_dir().join("oauth_client.mjs")).args([&resource, &issuer]);
        let (mut node, mut lines) = start(command);
        let authorize = authorization_url(&mut lines, &issuer).await;
        assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("resource="), "{authorize}");
        let label = format!("oauth-sdk-{:?}", app.db.engine).to_lowercase();
        approve_tools_in_chromium(&label, &authorize, "TS SDK e2e").await;

        let result = sdk_result(&mut lines).await;
        assert_eq!(result["state_ok"], true, "{result}");
        assert_eq!(result["iss_ok"], true, "{result}");
        assert_eq!(result["has_refresh"], true);
        assert!(result["whoami"].as_str().is_some_and(|w| w.contains(r#""authorization_seen":false"#)), "the upstream never sees the token: {result}");
        let refused = result["outside_scope"].as_str().expect("refusal");
        assert!(refused.contains("403"), "prompts outside the grant refused: {refused}");
        let _ = node.wait().await;

        let grants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oauth_grants WHERE revoked_at IS NULL")
            .fetch_one(app.state.pool()).await.expect("grants");
        assert_eq!(grants, 1, "one live connection, not ended by the refresh");
        drop(gateway);
    }

    async fn the_python_sdk_client_connects_through_the_gateway_with_oauth(app: TestApp) {
        let (app, public) = on_known_address(app).await;
        app.create_service_user("agent").await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        let (upstream, _events) = upstream().await;
        let (gateway, resource) = gateway_at(&app, &upstream, &public);

        let mut command = tokio::process::Command::new(crate::conformance::harness::python());
        command.arg(conformance_dir().join("py_oauth_client.py")).arg(&resource);
        let (mut python, mut lines) = start(command);
        let authorize = authorization_url(&mut lines, &format!("{public}/oauth/acme")).await;
        let label = format!("oauth-py-{:?}", app.db.engine).to_lowercase();
        approve_tools_in_chromium(&label, &authorize, "Python SDK e2e").await;

        let result = sdk_result(&mut lines).await;
        assert_eq!(result["callback_params"], serde_json::json!(["code", "iss", "state"]), "{result}");
        assert!(result["outside_scope"].as_str().is_some_and(|e| e.contains("(step-up) is not approved")), "refused with 403 insufficient_scope, the SDK asked for more: {result}");
        assert_eq!(result["authorizations"], 2, "the first authorization, then the declined step-up");
        let refreshed = result["token_answers"].as_array().expect("token answers");
        assert!(refreshed.len() == 1 && refreshed[0].as_str().is_some_and(|a| a.starts_with("200 ")), "{result}");
        let _ = python.wait().await;
        drop(gateway);
    }
}
