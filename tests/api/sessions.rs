//! MCP sessions belong to the key that opened them (issue 28): through the
//! gateway, in front of a stateful upstream (rmcp, `LocalSessionManager`),
//! on both engines, across gateway instances on one database.

use std::{sync::Arc, time::Duration};

use keysmith_verify::{
    TenantScope,
    session::{SessionHash, SessionOwner, SessionStore, SqlSessions},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    both_engines,
    conformance::harness::{Program, Upstream, audit_rows},
    gateway::{gateway, gateway_with, upstream},
    helpers::TestApp,
    mcp::{initialize, tool_call},
};

const SESSION: &str = "mcp-session-id";

/// A request to `{gateway}/mcp` as `key`, in `session` if given.
async fn send(
    gateway: &str,
    method: Method,
    key: &str,
    session: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, format!("{gateway}/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request.header(SESSION, session);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

/// Opens a session as `key` (initialize, then `initialized`); its id.
async fn open_session(gateway: &str, key: &str) -> String {
    let response = send(gateway, Method::POST, key, None, Some(initialize())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response
        .headers()
        .get(SESSION)
        .expect("a stateful upstream issues a session")
        .to_str()
        .expect("ascii")
        .to_owned();
    let _ = response.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = send(
        gateway,
        Method::POST,
        key,
        Some(&session),
        Some(initialized),
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    session
}

/// `whoami` in `session` as `key`: the status, and the body when it is 200.
async fn whoami(gateway: &str, key: &str, session: &str) -> (StatusCode, String) {
    let response = send(
        gateway,
        Method::POST,
        key,
        Some(session),
        Some(tool_call(2, "whoami")),
    )
    .await;
    let status = response.status();
    let body = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("answer in time")
        .expect("body");
    (status, body)
}

/// The layer's own `404` (not the upstream's): the request never reached it.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.expect("body");
    assert!(body.contains("session_not_found"), "{body}");
}

/// B's session on an official SDK's stateful server: A's attempts never
/// run, and are in A's audit trail.
async fn sdk_sessions_are_bound(app: &TestApp, program: Program) {
    let b = key(app, "bob").await;
    let alice = app.create_service_user("alice").await;
    let created = app.create_key(&alice, json!({})).await;
    let (a_id, a) = (
        created["id"].as_str().expect("id"),
        created["key"].as_str().expect("key").to_owned(),
    );
    let upstream = Upstream::start(program).await;
    let gateway = gateway(app, &upstream.base).await;
    let session = open_session(&gateway, &b).await;
    assert_refused(
        send(
            &gateway,
            Method::POST,
            &a,
            Some(&session),
            Some(tool_call(2, "whoami")),
        )
        .await,
    )
    .await;
    assert_refused(send(&gateway, Method::GET, &a, Some(&session), None).await).await;
    assert_refused(send(&gateway, Method::DELETE, &a, Some(&session), None).await).await;
    let (status, body) = whoami(&gateway, &b, &session).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("bob"), "{body}");
    let runs = upstream.ran();
    assert_eq!(
        runs,
        [("whoami".to_owned(), "bob".to_owned())],
        "A's call never ran"
    );
    // A's three attempts are in A's audit trail, as refusals.
    let mut refused = Vec::new();
    for _ in 0..100 {
        refused = audit_rows(app, a_id).await;
        if refused.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reasons: Vec<&str> = refused
        .iter()
        .map(|(_, _, reason)| reason.as_str())
        .collect();
    assert_eq!(reasons, ["session_not_found"; 3], "{refused:?}");
    assert_eq!(
        refused[0].0, "whoami",
        "the refused call is named: {refused:?}"
    );
    let ended = send(&gateway, Method::DELETE, &b, Some(&session), None).await;
    assert!(ended.status().is_success(), "{}", ended.status());
    assert_refused(
        send(
            &gateway,
            Method::POST,
            &b,
            Some(&session),
            Some(tool_call(3, "whoami")),
        )
        .await,
    )
    .await;
}

async fn key(app: &TestApp, name: &str) -> String {
    let su = app.create_service_user(name).await;
    app.create_key(&su, json!({})).await["key"]
        .as_str()
        .expect("key")
        .to_owned()
}

both_engines! {
    async fn another_keys_session_is_not_found_on_post_get_and_delete(app: TestApp) {
        let (b, a) = (key(&app, "bob").await, key(&app, "alice").await);
        let (upstream, _events) = upstream().await;
        let gateway = gateway(&app, &upstream).await;
        let session = open_session(&gateway, &b).await;
        let (status, body) = whoami(&gateway, &b, &session).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("bob"), "{body}");

        assert_refused(send(&gateway, Method::POST, &a, Some(&session), Some(tool_call(2, "whoami"))).await).await;
        // A may not take B's stream, nor end B's session.
        assert_refused(send(&gateway, Method::GET, &a, Some(&session), None).await).await;
        assert_refused(send(&gateway, Method::DELETE, &a, Some(&session), None).await).await;

        // B's session is untouched: its stream is B's to open, its calls run.
        let stream = send(&gateway, Method::GET, &b, Some(&session), None).await;
        assert_eq!(stream.status(), StatusCode::OK, "nobody took B's stream");
        drop(stream);
        let (status, body) = whoami(&gateway, &b, &session).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("bob"), "{body}");

        // B ends it; from then on it is unknown, to B too.
        let ended = send(&gateway, Method::DELETE, &b, Some(&session), None).await;
        assert!(ended.status().is_success(), "{}", ended.status());
        assert_refused(send(&gateway, Method::POST, &b, Some(&session), Some(tool_call(3, "whoami"))).await).await;
        assert_eq!(app.count("mcp_sessions").await, 0, "the ended binding is gone");
    }

    async fn the_typescript_sdks_sessions_are_bound_too(app: TestApp) {
        sdk_sessions_are_bound(&app, Program::TsServerStateful).await;
    }

    async fn the_python_sdks_sessions_are_bound_too(app: TestApp) {
        sdk_sessions_are_bound(&app, Program::PyServerStateful).await;
    }

    async fn a_session_id_never_issued_is_not_found(app: TestApp) {
        let b = key(&app, "bob").await;
        let (upstream, _events) = upstream().await;
        let gateway = gateway(&app, &upstream).await;
        let _real = open_session(&gateway, &b).await;
        for made_up in ["00000000-0000-0000-0000-000000000000", "x"] {
            assert_refused(send(&gateway, Method::POST, &b, Some(made_up), Some(tool_call(2, "whoami"))).await).await;
            assert_refused(send(&gateway, Method::GET, &b, Some(made_up), None).await).await;
            assert_refused(send(&gateway, Method::DELETE, &b, Some(made_up), None).await).await;
        }
    }

    async fn only_the_session_id_is_stored_hashed(app: TestApp) {
        let b = key(&app, "bob").await;
        let (upstream, _events) = upstream().await;
        let gateway = gateway(&app, &upstream).await;
        let session = open_session(&gateway, &b).await;
        let dump = app.db.dump();
        assert!(!dump.contains(&session), "the raw session id is never stored");
        assert!(dump.contains(&SessionHash::of(session.as_bytes()).to_hex()));
    }

    async fn another_tenants_key_is_refused_with_any_tenant(app: TestApp) {
        let b = key(&app, "bob").await;
        let globex = app.create_tenant("globex").await;
        let other = app.management_key(&globex).await;
        let (upstream, _events) = upstream().await;
        let gateway = gateway_with(&app, &upstream, TenantScope::Any, None).await;
        let session = open_session(&gateway, &b).await;
        assert_refused(send(&gateway, Method::POST, &other, Some(&session), Some(tool_call(2, "whoami"))).await).await;
        assert_refused(send(&gateway, Method::GET, &other, Some(&session), None).await).await;
        assert_refused(send(&gateway, Method::DELETE, &other, Some(&session), None).await).await;
        assert_eq!(whoami(&gateway, &b, &session).await.0, StatusCode::OK);
    }

    async fn gateways_on_one_database_share_the_binding(app: TestApp) {
        let (b, a) = (key(&app, "bob").await, key(&app, "alice").await);
        let (upstream, _events) = upstream().await;
        let first = gateway(&app, &upstream).await;
        let second = gateway(&app, &upstream).await;
        let session = open_session(&first, &b).await;
        let (status, body) = whoami(&second, &b, &session).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("bob"), "{body}");
        assert_refused(send(&second, Method::POST, &a, Some(&session), Some(tool_call(2, "whoami"))).await).await;
        // Ended through the second: a gateway that had not seen it yet knows
        // at once; the first, which cached it, still lets only B through
        // (to an upstream that ended it) until it ages out.
        let ended = send(&second, Method::DELETE, &b, Some(&session), None).await;
        assert!(ended.status().is_success(), "{}", ended.status());
        let third = gateway(&app, &upstream).await;
        assert_refused(send(&third, Method::POST, &b, Some(&session), Some(tool_call(3, "whoami"))).await).await;
        assert_refused(send(&first, Method::POST, &a, Some(&session), Some(tool_call(4, "whoami"))).await).await;
    }

    async fn a_burst_of_sessions_across_gateways_each_stays_its_openers(app: TestApp) {
        let (b, a) = (key(&app, "bob").await, key(&app, "alice").await);
        let (upstream, _events) = upstream().await;
        let gateways = [gateway(&app, &upstream).await, gateway(&app, &upstream).await];
        // Both keys open sessions at once through both gateways...
        let opened = futures_util::future::join_all((0..12).map(|n| {
            let (gateway, key) = (&gateways[n % 2], if n % 3 == 0 { &a } else { &b });
            async move { (n, key.clone(), open_session(gateway, key).await) }
        }))
        .await;
        // ...then every session is tried at once by both keys through the
        // gateway that did not open it (its first sight of the session).
        let tries = futures_util::future::join_all(opened.iter().flat_map(|(n, opener, session)| {
            let gateway = &gateways[(n + 1) % 2];
            [a.clone(), b.clone()].map(|key| async move {
                let (status, body) = whoami(gateway, &key, session).await;
                (key == *opener, status, body)
            })
        }))
        .await;
        for (own, status, body) in tries {
            let expected = if own { StatusCode::OK } else { StatusCode::NOT_FOUND };
            assert_eq!(status, expected, "own session: {own}: {body}");
            assert!(own || body.contains("session_not_found"), "{body}");
        }
    }

    async fn racing_binds_of_one_session_agree_on_its_owner(app: TestApp) {
        let store = Arc::new(SqlSessions::new(app.state.pool().clone()));
        let session = SessionHash::of(b"raced");
        let owners = futures_util::future::join_all((0..16).map(|n| {
            let store = store.clone();
            async move {
                let owner = SessionOwner { key_id: format!("k{n}").into(), tenant_id: "t".into() };
                store.bind(session, &owner, 1_000, 0).await.expect("bind").expect("bound")
            }
        }))
        .await;
        assert!(owners.iter().all(|b| b.owner == owners[0].owner), "{owners:?}");
        assert_eq!(app.count("mcp_sessions").await, 1);
    }
}
