//! `keysmith gateway` on several serving threads (`--threads`,
//! `KEYSMITH_GATEWAY_THREADS`): each with its own listener on the one
//! address, all stopped together, the audit flushed once after.

use std::{collections::BTreeSet, time::Duration};

use axum::{Router, extract::State, routing::get};
use keysmith::connections::ConnectionLimits;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::{
    both_engines,
    child::Running,
    gateway::serve_upstream,
    gateway_startup::{bare_gateway, refused},
};

/// A bound on anything a test waits for; never reached when it passes.
const BOUND: Duration = Duration::from_secs(30);

/// One GET on a connection of its own (none kept idle for reuse).
async fn fresh_get(url: &str, key: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let request = client.get(url);
    let request = match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };
    tokio::time::timeout(BOUND, request.send())
        .await
        .expect("answered in time")
        .expect("answer")
}

/// Two listeners on one address, each served by its own thread: connections
/// from many client ports reach both (the kernel picks by their addresses).
#[tokio::test]
async fn two_serving_threads_share_one_address_and_both_accept() {
    keysmith_verify::tls::install_default_provider();
    let listeners = keysmith::gateway::bind("127.0.0.1:0".parse().expect("addr"), 2).expect("bind");
    assert_eq!(listeners.len(), 2);
    let addr = listeners[0].local_addr().expect("addr");
    assert_eq!(
        listeners[1].local_addr().expect("addr"),
        addr,
        "one address"
    );
    // An own route of each gateway answers with its thread's name.
    let named = || {
        let proxy = keysmith::gateway::proxy("http://127.0.0.1:9", None).expect("proxy");
        keysmith::gateway::Gateway::new(proxy).route(
            "/",
            get(|| async {
                std::thread::current()
                    .name()
                    .unwrap_or("unnamed")
                    .to_owned()
            }),
        )
    };
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let apps = vec![named(), named()];
    let server = tokio::spawn(async move {
        let limits = ConnectionLimits::default();
        let stopped = async {
            let _ = stopping.await;
        };
        keysmith::gateway::serve_threads(listeners, apps, &limits, stopped, async { "then ran" })
            .await
    });
    let mut threads = BTreeSet::new();
    for _ in 0..64 {
        let answer = fresh_get(&format!("http://{addr}/"), None).await;
        threads.insert(answer.text().await.expect("body"));
    }
    // All 64 on one listener would be a 1 in 2^63 draw.
    assert_eq!(
        threads,
        BTreeSet::from(["keysmith-serve-0".to_owned(), "keysmith-serve-1".to_owned()])
    );
    stop.send(()).expect("still serving");
    let served = tokio::time::timeout(BOUND, server)
        .await
        .expect("stops")
        .expect("no panic");
    assert_eq!(served.expect("served"), "then ran");
}

/// One connection cap for all the serving threads: a thread that gets every
/// connection may serve the whole cap (the kernel spreads connections by
/// address, not by load), and no thread serves past it. Each listener here
/// has an address of its own, so the test chooses the thread.
#[tokio::test]
async fn the_connection_cap_holds_for_all_threads_together() {
    keysmith_verify::tls::install_default_provider();
    let bind = || {
        let mut listeners =
            keysmith::gateway::bind("127.0.0.1:0".parse().expect("addr"), 1).expect("bind");
        listeners.remove(0)
    };
    let listeners = vec![bind(), bind()];
    let addrs: Vec<_> = listeners
        .iter()
        .map(|listener| listener.local_addr().expect("addr"))
        .collect();
    let (arrived, mut arrivals) = mpsc::channel(8);
    let (release, released) = watch::channel(false);
    let held = || {
        let (arrived, released) = (arrived.clone(), released.clone());
        let proxy = keysmith::gateway::proxy("http://127.0.0.1:9", None).expect("proxy");
        keysmith::gateway::Gateway::new(proxy).route(
            "/",
            get(move || {
                let (arrived, mut released) = (arrived.clone(), released.clone());
                async move {
                    let _ = arrived.send(()).await;
                    let _ = released.wait_for(|released| *released).await;
                    "ok"
                }
            }),
        )
    };
    let apps = vec![held(), held()];
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let limits = ConnectionLimits {
            max_connections: Some(2),
            ..ConnectionLimits::default()
        };
        let stopped = async {
            let _ = stopping.await;
        };
        keysmith::gateway::serve_threads(listeners, apps, &limits, stopped, async {}).await
    });
    let get_from = |addr: std::net::SocketAddr| {
        tokio::spawn(async move {
            let answer = fresh_get(&format!("http://{addr}/"), None).await;
            (answer.status(), answer.text().await.expect("body"))
        })
    };
    // Both connections on the first thread are served at once: the cap is
    // not split in halves.
    let mut requests = vec![get_from(addrs[0]), get_from(addrs[0])];
    for _ in 0..2 {
        tokio::time::timeout(BOUND, arrivals.recv())
            .await
            .expect("the first thread serves both");
    }
    // The cap is reached: a connection to the other thread waits.
    requests.push(get_from(addrs[1]));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), arrivals.recv())
            .await
            .is_err(),
        "a third connection was served under a cap of two"
    );
    release.send(true).expect("handlers running");
    for request in requests {
        let (status, body) = request.await.expect("request task");
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    stop.send(()).expect("still serving");
    tokio::time::timeout(BOUND, server)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("served");
}

/// A second gateway on an address one already serves is refused, though
/// the first's listeners share it among themselves.
#[tokio::test]
async fn an_address_in_use_is_refused() {
    let first = keysmith::gateway::bind("127.0.0.1:0".parse().expect("addr"), 2).expect("bind");
    let addr = first[0].local_addr().expect("addr");
    let err = keysmith::gateway::bind(addr, 2).expect_err("bound twice");
    assert!(err.to_string().contains("failed to bind"), "{err:#}");
}

#[tokio::test]
async fn a_bad_thread_count_stops_the_gateway_at_start_up() {
    for bad in ["257", "-1", "two", "1.5"] {
        let text = refused(bare_gateway().env("KEYSMITH_GATEWAY_THREADS", bad)).await;
        assert!(
            text.contains(&format!("invalid value '{bad}'"))
                && text.contains("KEYSMITH_GATEWAY_THREADS (--threads) must be a whole number from 0 (one per core) to 256"),
            "{bad}: {text}"
        );
    }
}

/// The upstream: each request says it arrived, then waits for `release`.
async fn held_upstream(arrived: mpsc::Sender<()>, release: watch::Receiver<bool>) -> String {
    async fn held(
        State((arrived, mut release)): State<(mpsc::Sender<()>, watch::Receiver<bool>)>,
    ) -> &'static str {
        let _ = arrived.send(()).await;
        let _ = release.wait_for(|released| *released).await;
        "ok"
    }
    serve_upstream(
        Router::new()
            .fallback(get(held))
            .with_state((arrived, release)),
    )
    .await
}

/// Requests in progress on both threads when SIGTERM comes are answered;
/// then the gateway exits cleanly with one audit row per request written.
const IN_FLIGHT: usize = 16;

both_engines! {
    async fn shutdown_finishes_requests_on_every_thread_and_flushes_their_audit(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let (arrived, mut arrivals) = mpsc::channel(IN_FLIGHT);
        let (release, released) = watch::channel(false);
        let upstream = held_upstream(arrived, released).await;
        let mut gateway = Running::gateway(&app, &upstream, &["--no-mcp", "--threads", "2"], &[], None);

        let url = format!("{}/anything", gateway.base);
        let secret = key["key"].as_str().expect("key").to_owned();
        let requests: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let (url, secret) = (url.clone(), secret.clone());
                tokio::spawn(async move {
                    let answer = fresh_get(&url, Some(&secret)).await;
                    (answer.status(), answer.text().await.expect("body"))
                })
            })
            .collect();
        for _ in 0..IN_FLIGHT {
            tokio::time::timeout(BOUND, arrivals.recv()).await.expect("every request reaches the upstream");
        }
        let logs = gateway.logs();
        assert!(logs.contains("serving threads") && logs.contains("threads=2"), "{logs}");
        assert_eq!(logs.matches("connection limits").count(), 2, "one accept loop per thread:\n{logs}");
        let metrics = fresh_get(&format!("{}/metrics", gateway.base), None).await.text().await.expect("metrics");
        assert!(metrics.lines().any(|line| line == "keysmith_gateway_serving_threads 2"), "{metrics}");

        gateway.terminate();
        // Released only once the signal is in: the requests are still in flight then.
        for _ in 0..600 {
            if gateway.logs().contains("shutting down") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gateway.logs().contains("shutting down"), "{}", gateway.logs());
        release.send(true).expect("upstream running");
        for request in requests {
            let (status, body) = request.await.expect("request task");
            assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"), "answered after SIGTERM");
        }
        let status = gateway.exited().await;
        let logs = gateway.logs();
        assert!(status.success(), "{status:?}:\n{logs}");
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call' AND key_id = $1")
            .bind(key["id"].as_str().expect("id"))
            .fetch_one(app.state.pool())
            .await
            .expect("count");
        assert_eq!(audited, i64::try_from(IN_FLIGHT).expect("small"), "one row per request:\n{logs}");
    }
}
