//! How `keysmith serve` and `keysmith gateway` hold client connections:
//! silent, half-sent and idle connections are closed, event streams are
//! not, and a client holding sockets does not starve the others.

use std::{sync::Arc, time::Duration};

use keysmith::connections::ConnectionLimits;
use keysmith_verify::{SqlVerifier, TenantScope, VerifyLayer};
use reqwest::StatusCode;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    child::Running,
    gateway::{plain_upstream, upstream},
    helpers::{Engine, TestApp},
};

/// Timeouts short enough for a test to see them act.
const SHORT: ConnectionLimits = ConnectionLimits {
    header_timeout: Duration::from_secs(1),
    body_timeout: Duration::from_secs(1),
    max_connections: None,
};

/// Far above the timeouts: a connection still open then is held for good.
const BOUND: Duration = Duration::from_secs(15);

/// What `addr` sent until it closed the connection; an error if it was
/// still open after [`BOUND`].
async fn read_until_closed(stream: &mut TcpStream) -> Result<String, String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0_u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let seen = String::from_utf8_lossy(&seen).into_owned();
    match read {
        Ok(()) => Ok(seen),
        Err(_) => Err(format!("still open after {BOUND:?}, having sent {seen:?}")),
    }
}

async fn open(addr: &str, sent: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(sent.as_bytes()).await.expect("send");
    stream
}

/// A connection that sends nothing, one that sends half a request head,
/// one idle after its first answer, and one that sends `body_head` (a head
/// announcing 100 bytes of body) and one byte: each is closed.
async fn held_connections_are_closed(addr: &str, body_head: &str) {
    let mut silent = open(addr, "").await;
    let mut half_head = open(addr, "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ").await;
    let mut idle = open(addr, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let mut half_body = open(addr, &format!("{body_head}Content-Length: 100\r\n\r\n{{")).await;
    let silent = read_until_closed(&mut silent).await.expect("silent");
    assert!(!silent.contains("200 OK"), "{silent}");
    let half_head = read_until_closed(&mut half_head)
        .await
        .expect("half a head");
    assert!(!half_head.contains("200 OK"), "{half_head}");
    let idle = read_until_closed(&mut idle).await.expect("idle keep-alive");
    assert!(
        idle.starts_with("HTTP/1.1 200 OK"),
        "answered, then closed: {idle}"
    );
    let half_body = read_until_closed(&mut half_body)
        .await
        .expect("half a body");
    assert!(
        !half_body.starts_with("HTTP/1.1 2"),
        "never accepted: {half_body}"
    );
}

#[tokio::test]
async fn keysmith_serve_closes_silent_half_sent_and_idle_connections() {
    let db = crate::helpers::TestDb::new(Engine::Sqlite).await;
    let env = [
        ("KEYSMITH_HEADER_TIMEOUT_SECS", "1".to_owned()),
        ("KEYSMITH_BODY_TIMEOUT_SECS", "1".to_owned()),
    ];
    let app = TestApp::spawn_with(db, &env, None).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // A route that reads its body (as JSON) once the key is verified.
    let body_head = format!(
        "POST /api/v1/tenants/acme/service-users HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n",
        app.admin_key
    );
    held_connections_are_closed(&addr, &body_head).await;
}

/// `keysmith gateway`'s proxy behind the layer (MCP mode), under `limits`.
async fn gateway(app: &TestApp, upstream: &str, limits: ConnectionLimits) -> String {
    let verifier = SqlVerifier::new(
        app.state.pool().clone(),
        app.state.peppers.clone(),
        Arc::new(app.clock.clone()),
    );
    let layer = VerifyLayer::builder(verifier, TenantScope::only(app.tenant.slug.as_str()))
        .clock(Arc::new(app.clock.clone()))
        .build();
    let router =
        keysmith::gateway::Gateway::new(keysmith::gateway::proxy(upstream, None).expect("proxy"))
            .layer(layer)
            .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        keysmith::gateway::serve_with(listener, router, &limits, std::future::pending())
            .await
            .expect("gateway");
    });
    addr
}

#[tokio::test]
async fn the_gateway_closes_silent_half_sent_and_idle_connections() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let su = app.create_service_user("ci-bot").await;
    let key = app.create_key(&su, json!({})).await;
    let (upstream, _events) = upstream().await;
    let addr = gateway(&app, &upstream, SHORT).await;
    // The layer reads an MCP body whole before judging it.
    let body_head = format!(
        "POST /mcp HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
        key["key"].as_str().expect("key")
    );
    held_connections_are_closed(&addr, &body_head).await;
}

#[tokio::test]
async fn an_event_stream_outlives_every_connection_timeout() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let su = app.create_service_user("ci-bot").await;
    let key = app.create_key(&su, json!({})).await;
    let (upstream, events) = upstream().await;
    let addr = gateway(&app, &upstream, SHORT).await;
    let mut stream = reqwest::Client::new()
        .get(format!("http://{addr}/events"))
        .bearer_auth(key["key"].as_str().expect("key"))
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), StatusCode::OK);
    // Quiet for well over the header and body timeouts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    events.send("late".into()).await.expect("send");
    let event = tokio::time::timeout(BOUND, stream.chunk())
        .await
        .expect("the event in time")
        .expect("stream still open")
        .expect("data");
    assert_eq!(&event[..], b"data: late\n\n");
}

/// `prlimit` gives the gateway 64 open files, 256 at most; it raises its
/// limit to 256 and serves 128 connections at once. A client then opens
/// 300 connections and sends nothing: more than the process may open at
/// all. A request from someone else is still answered, through to the
/// upstream (which needs one more file of the gateway's own).
#[tokio::test]
async fn a_client_holding_connections_does_not_starve_the_others() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let su = app.create_service_user("ci-bot").await;
    let key = app.create_key(&su, json!({})).await;
    let upstream = plain_upstream().await;
    let gateway = Running::gateway(
        &app,
        &upstream,
        &["--no-mcp"],
        &[("KEYSMITH_HEADER_TIMEOUT_SECS", "1")],
        Some("64:256"),
    );
    let logs = gateway.logs();
    assert!(
        logs.contains("max_connections=128"),
        "the soft limit raised to 256, half of it for connections:\n{logs}"
    );

    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(TcpStream::connect(&gateway.addr).await.expect("connect"));
    }
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        reqwest::Client::new()
            .get(format!("{}/anything", gateway.base))
            .bearer_auth(key["key"].as_str().expect("key"))
            .send(),
    )
    .await
    .expect("answered while the connections are held")
    .expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.expect("body"), "ok");
    let logs = gateway.logs();
    assert!(logs.contains("connection cap reached"), "{logs}");
    assert!(
        !logs.contains("failed to accept"),
        "the cap keeps the process under its file limit:\n{logs}"
    );
    drop(held);
}

/// On shutdown a request in progress gets its answer, an idle keep-alive
/// connection is closed at once (not after its header timeout), and the
/// server returns once both are gone.
#[tokio::test]
async fn shutdown_finishes_requests_in_progress_and_closes_idle_connections() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (entered, mut handler_entered) = tokio::sync::mpsc::channel::<()>(1);
    let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
    // The gateway's own routes: served like the proxied ones, without an
    // upstream.
    let proxy = keysmith::gateway::proxy("http://127.0.0.1:9", None).expect("proxy");
    let router = keysmith::gateway::Gateway::new(proxy)
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/slow",
            axum::routing::get(move || {
                let (released, entered) = (Arc::clone(&released), entered.clone());
                async move {
                    let _ = entered.send(()).await;
                    if let Some(released) = released.lock().await.take() {
                        let _ = released.await;
                    }
                    "finished"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Timeouts far beyond the test: only the shutdown can close these.
    let patient = ConnectionLimits {
        header_timeout: Duration::from_secs(600),
        body_timeout: Duration::from_secs(600),
        max_connections: None,
    };
    let server = tokio::spawn(async move {
        keysmith::gateway::serve_with(listener, router, &patient, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut idle = open(&addr, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let mut buf = [0_u8; 1024];
    let n = idle.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    let mut busy = open(&addr, "GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").await;
    handler_entered
        .recv()
        .await
        .expect("the slow request is in progress");

    stop.send(()).expect("stop");
    assert_eq!(
        read_until_closed(&mut idle).await,
        Ok(String::new()),
        "idle: closed at once"
    );
    release.send(()).expect("release");
    let answer = read_until_closed(&mut busy)
        .await
        .expect("busy: closed after its answer");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("finished"),
        "{answer}"
    );
    tokio::time::timeout(BOUND, server)
        .await
        .expect("the server returns")
        .expect("task")
        .expect("served");
}
