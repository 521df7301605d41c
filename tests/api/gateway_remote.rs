//! `keysmith gateway --verify-url`: the real binary, with no database
//! access at all, verifying through the in-process server and delivering
//! its audit back to it in batches (spooled while the server is down).

use std::time::{Duration, Instant};

use keysmith::domain::Scope;
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
    gateway::upstream,
    gateway_trust::serve_tls,
    helpers::{TestApp, expect_json},
    limits_redis::REDIS,
    mcp::{call_text, initialize, tool_call},
};

mod process;
pub use process::GatewayProcess;

const DELIVERED: &str = "keysmith_audit_delivered_total";
const DEPTH: &str = "keysmith_audit_spool_depth";
const RETRIES: &str = "keysmith_audit_delivery_retries_total";
const SPOOL_FULL: &str = "keysmith_audit_dropped_total{reason=\"spool_full\"}";

/// A key of `acme` allowed `whoami` and `echo`, with `extra`: `(id, key, service user id)`.
async fn agent_key(app: &TestApp, extra: Value) -> (String, String, String) {
    agent_key_named(app, "agent", extra).await
}

async fn agent_key_named(app: &TestApp, name: &str, extra: Value) -> (String, String, String) {
    let su = app.create_service_user(name).await;
    let mut body = json!({"allowed_tools": ["whoami", "echo"]});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let key = app.create_key(&su, body).await;
    let field = |name: &str| key[name].as_str().expect(name).to_owned();
    (field("id"), field("key"), su)
}

/// One raw `tools/call` of `whoami` through the gateway, tagged `request_id`.
async fn call(gateway: &GatewayProcess, key: &str, request_id: &str) -> StatusCode {
    reqwest::Client::new()
        .post(gateway.mcp())
        .header("accept", "application/json, text/event-stream")
        .header("x-request-id", request_id)
        .bearer_auth(key)
        .json(&tool_call(1, "whoami"))
        .send()
        .await
        .expect("send")
        .status()
}

/// `(tool, request id)` of the key's tool calls, as the server's audit API lists them.
async fn audited_calls(app: &TestApp, key_id: &str) -> Vec<(String, String)> {
    let page = expect_json(
        app.get(&format!(
            "/api/v1/tenants/acme/keys/{key_id}/audit?limit=200"
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    let mut calls: Vec<(String, String)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "tool.call")
        .map(|e| {
            let text = |f: &str| e[f].as_str().unwrap_or_default().to_owned();
            (text("tool"), text("request_id"))
        })
        .collect();
    calls.sort();
    calls
}

both_engines! {
    async fn a_gateway_without_a_database_serves_and_audits_through_the_server(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let (key_id, key, su) = agent_key(&app, json!({})).await;
        let gateway = GatewayProcess::start(&app, &upstream, &verify_key, &[], &[]).await;

        let config = StreamableHttpClientTransportConfig::with_uri(gateway.mcp()).auth_header(key.clone());
        let client = ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize through the gateway");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-service-user"], "agent");
        assert_eq!(who["identity"]["x-keysmith-service-user-id"], su.as_str());
        assert_eq!(who["identity"]["x-keysmith-tenant"], "acme");
        assert_eq!(call_text(&client, "echo", json!({"text": "hi"})).await.expect("echo"), "hi");
        let refused = call_text(&client, "delete_everything", json!({})).await;
        assert!(refused.is_err(), "a tool outside the allowlist: {refused:?}");
        drop(client);
        // Another tenant's key is refused by the server's verdict.
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        assert_eq!(call(&gateway, &globex_admin, "foreign").await, StatusCode::UNAUTHORIZED);

        let logs = gateway.stop().await;
        assert!(logs.contains("no database"), "{logs}");
        for secret in [&verify_key, &key, &globex_admin] {
            assert!(!logs.contains(secret.as_str()), "a key in the logs:\n{logs}");
        }
        let tools: Vec<String> = audited_calls(&app, &key_id).await.into_iter().map(|(tool, _)| tool).collect();
        for expected in ["whoami", "echo", "delete_everything", "initialize"] {
            assert!(tools.iter().any(|t| t == expected), "{expected} missing from {tools:?}");
        }
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, service_user_id, actor, outcome, reason FROM audit_events WHERE key_id = $1 AND tool = 'delete_everything'",
        )
        .bind(&key_id)
        .fetch_all(app.state.pool())
        .await
        .expect("rows");
        assert_eq!(rows, [(app.tenant.id.to_string(), su.clone(), format!("key:{key_id}"), "denied".to_owned(), "tool_not_allowed".to_owned())]);
    }

    async fn a_revocation_reaches_a_remote_gateway_within_its_cache_ttl(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let (key_id, key, _) = agent_key(&app, json!({})).await;
        let gateway = GatewayProcess::start(&app, &upstream, &verify_key, &["--verify-cache-ttl", "2"], &[]).await;
        assert_ne!(call(&gateway, &key, "before").await, StatusCode::UNAUTHORIZED);
        expect_json(app.revoke_key(&key_id, "leaked").await, StatusCode::OK).await;
        let revoked = Instant::now();
        while call(&gateway, &key, "after").await != StatusCode::UNAUTHORIZED {
            assert!(revoked.elapsed() < Duration::from_millis(3500), "still let through {:?} after the revocation", revoked.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gateway.stop().await;
    }

    async fn the_server_down_for_a_while_loses_no_audit_event(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let (key_id, key, _) = agent_key(&app, json!({})).await;
        let gateway = GatewayProcess::start(&app, &upstream, &verify_key, &["--verify-cache-ttl", "120"], &[]).await;
        for n in 0..3 {
            call(&gateway, &key, &format!("up-{n}")).await;
        }
        gateway.wait_for_metric(DELIVERED, 3.0).await;
        let (clock, addr) = (app.clock.clone(), app.base.trim_start_matches("http://").to_owned());
        let db = app.stop().await;
        // Served from the verdict cache while the server is away; audited into the spool.
        for n in 0..5 {
            assert_ne!(call(&gateway, &key, &format!("down-{n}")).await, StatusCode::SERVICE_UNAVAILABLE);
        }
        gateway.wait_for_metric(DEPTH, 5.0).await;
        let down = Instant::now();
        while gateway.metric(RETRIES).await < 2.0 {
            assert!(down.elapsed() < Duration::from_secs(20), "no delivery was retried");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let app = TestApp::spawn_at(db, &[], Some(clock), &addr).await;
        gateway.wait_for_metric(DEPTH, 0.0).await;
        gateway.wait_for_metric(DELIVERED, 8.0).await;
        assert_eq!(gateway.metric(SPOOL_FULL).await, 0.0);
        let calls = audited_calls(&app, &key_id).await;
        let expected: Vec<(String, String)> = (0..5).map(|n| format!("down-{n}")).chain((0..3).map(|n| format!("up-{n}"))).map(|id| ("whoami".to_owned(), id)).collect();
        assert_eq!(calls, expected, "one row per request, none twice");
        gateway.stop().await;
        assert_eq!(audited_calls(&app, &key_id).await.len(), 8);
    }

    async fn a_full_spool_drops_its_oldest_events_and_counts_them(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let (key_id, key, _) = agent_key(&app, json!({})).await;
        let gateway = GatewayProcess::start(&app, &upstream, &verify_key, &["--verify-cache-ttl", "120", "--audit-spool", "3"], &[]).await;
        call(&gateway, &key, "up").await;
        gateway.wait_for_metric(DELIVERED, 1.0).await;
        let (clock, addr) = (app.clock.clone(), app.base.trim_start_matches("http://").to_owned());
        let db = app.stop().await;
        for n in 0..5 {
            call(&gateway, &key, &format!("down-{n}")).await;
        }
        gateway.wait_for_metric(SPOOL_FULL, 2.0).await;
        assert_eq!(gateway.metric(DEPTH).await, 3.0);
        assert_eq!(gateway.metric("keysmith_audit_events_lost_total").await, 2.0);
        let app = TestApp::spawn_at(db, &[], Some(clock), &addr).await;
        gateway.wait_for_metric(DELIVERED, 4.0).await;
        let ids: Vec<String> = audited_calls(&app, &key_id).await.into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, ["down-2", "down-3", "down-4", "up"], "the oldest two went");
        gateway.stop().await;
    }

    async fn gateways_sharing_redis_share_limits_and_sessions(app: TestApp) {
        const LIMIT: usize = 4;
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let (_, key, _) = agent_key(&app, json!({"rate_limit": {"per_minute": LIMIT}})).await;
        let redis = [("KEYSMITH_REDIS_URL", REDIS)];
        let first = GatewayProcess::start(&app, &upstream, &verify_key, &[], &redis).await;
        let second = GatewayProcess::start(&app, &upstream, &verify_key, &[], &redis).await;
        let burst = (0..3 * LIMIT).map(|n| {
            let (url, key) = (if n % 2 == 0 { first.mcp() } else { second.mcp() }, key.clone());
            tokio::spawn(async move {
                reqwest::Client::new().post(url).header("accept", "application/json, text/event-stream")
                    .bearer_auth(key).json(&tool_call(1, "whoami")).send().await.expect("send").status()
            })
        });
        let statuses: Vec<StatusCode> = futures_util::future::join_all(burst).await.into_iter().map(|s| s.expect("task")).collect();
        let passed = statuses.iter().filter(|s| **s != StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!(passed, LIMIT, "one budget over both gateways: {statuses:?}");

        // A session opened through one gateway is its key's on the other too.
        let (_, session_key, _) = agent_key_named(&app, "session-agent", json!({})).await;
        let opened = reqwest::Client::new().post(first.mcp()).header("accept", "application/json, text/event-stream")
            .bearer_auth(&session_key).json(&initialize()).send().await.expect("initialize");
        assert_eq!(opened.status(), StatusCode::OK);
        let session = opened.headers()["mcp-session-id"].to_str().expect("session id").to_owned();
        let on = |gateway: &GatewayProcess, key: &str| {
            reqwest::Client::new().post(gateway.mcp()).header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", session.clone()).bearer_auth(key.to_owned())
                .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).send()
        };
        let res = on(&second, &session_key).await.expect("send");
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{}", res.text().await.unwrap_or_default());
        let res = on(&second, &key).await.expect("send");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "another key's session");
        let alone = GatewayProcess::start(&app, &upstream, &verify_key, &[], &[]).await;
        let res = on(&alone, &session_key).await.expect("send");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "without Redis, bindings are per process");
        for gateway in [first, second, alone] {
            gateway.stop().await;
        }
    }

    async fn a_remote_gateway_trusts_a_private_ca_it_is_given_and_nothing_else(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let (https, pem) = serve_tls(keysmith::app::build_app(app.state.clone())).await;
        let ca = tempfile::NamedTempFile::new().expect("ca file");
        std::fs::write(ca.path(), &pem).expect("write ca");
        let ca_path = ca.path().to_str().expect("path");
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let logs = GatewayProcess::refused_at(&https, &upstream, &[], &[("KEYSMITH_VERIFY_KEY", &verify_key)]).await;
        assert!(logs.contains("KEYSMITH_VERIFY_KEY"), "an unknown certificate: {logs}");
        let (key_id, key, _) = agent_key(&app, json!({})).await;
        let gateway = GatewayProcess::start_at(&https, &upstream, &verify_key, &[], &[("KEYSMITH_VERIFY_CA_FILE", ca_path)]).await;
        assert_ne!(call(&gateway, &key, "over-tls").await, StatusCode::UNAUTHORIZED);
        gateway.stop().await;
        assert_eq!(audited_calls(&app, &key_id).await, [("whoami".to_owned(), "over-tls".to_owned())]);
    }

    async fn a_remote_gateway_refuses_to_start_on_a_wrong_key(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let logs = GatewayProcess::refused(&app, &upstream, &[], &[]).await;
        assert!(logs.contains("KEYSMITH_VERIFY_KEY"), "{logs}");
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let logs = GatewayProcess::refused(&app, &upstream, &["--any-tenant"], &[("KEYSMITH_VERIFY_KEY", &verify_key)]).await;
        assert!(logs.contains("--any-tenant needs the database"), "{logs}");
        // A key of another tenant: the tenant check at start names both.
        let globex = app.create_tenant("globex").await;
        let globex_verify = app.management_key_with(&globex, Scope::verify()).await;
        let logs = GatewayProcess::refused(&app, &upstream, &[], &[("KEYSMITH_VERIFY_KEY", &globex_verify)]).await;
        assert!(logs.contains("globex") && logs.contains("--tenant acme"), "{logs}");
        assert!(!logs.contains(&globex_verify), "{logs}");
        // A revoked one, and a key that is no management key.
        let (_, key, _) = agent_key(&app, json!({})).await;
        let logs = GatewayProcess::refused(&app, &upstream, &[], &[("KEYSMITH_VERIFY_KEY", &key)]).await;
        assert!(logs.contains("KEYSMITH_VERIFY_KEY") && logs.contains("403"), "{logs}");
        let verify_id = keysmith_verify::ApiKey::parse(&verify_key).expect("key").key_id().to_owned();
        expect_json(app.revoke_key(&verify_id, "rotated out").await, StatusCode::OK).await;
        let logs = GatewayProcess::refused(&app, &upstream, &[], &[("KEYSMITH_VERIFY_KEY", &verify_key)]).await;
        assert!(logs.contains("401") || logs.contains("revoked"), "{logs}");
    }
}

both_engines! {
    async fn the_remote_verdict_carries_everything_the_database_one_does(app: TestApp) {
        use keysmith_verify::{RemoteVerifier, SqlVerifier, Verifier};
        let su = app.create_service_user("full").await;
        let key = app.create_key(&su, json!({
            "allowed_tools": ["whoami", "files/*"],
            "scopes": ["deploy:write"],
            "expires_in_days": 30,
            "rate_limit": {"per_minute": 60, "tools": [{"tool": "files/*", "per_minute": 6}]},
            "quota": {"calls": 1000, "per": "day"},
        })).await;
        let plain = key["key"].as_str().expect("key");
        let local = SqlVerifier::new(app.state.pool().clone(), app.state.peppers.clone(), std::sync::Arc::new(app.clock.clone()));
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let remote = RemoteVerifier::new(&app.base, verify_key).expect("client");
        let from_database = Verifier::verify(&local, plain).await.expect("database").expect("valid");
        let mut from_server = remote.verify(plain).await.expect("server").expect("valid");
        // The server speaks tenant slugs; everything else must arrive whole
        // (a field added to the verdict and not carried here fails this).
        assert_eq!(from_server.tenant_id, "acme");
        from_server.tenant_id.clone_from(&from_database.tenant_id);
        assert_eq!(from_server, from_database);
    }
}
