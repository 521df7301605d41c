//! The gateway's trust boundaries: one tenant's keys only, redirects passed
//! back rather than followed, its own forwarding headers, audit lines that
//! name what ran, and HTTPS upstreams and remote verification with a
//! configured root.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, http::HeaderMap, response::IntoResponse, routing::get};
use keysmith_verify::{RemoteVerifier, TenantScope, Verifier};
use reqwest::StatusCode;
use rmcp::{
    ServiceExt,
    model::ClientConfig,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::{
    both_engines,
    gateway::{gateway, gateway_with},
    helpers::{TestApp, expect_json},
    mcp::{call_text, demo},
};

async fn serve_plain(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    base
}

/// `router` over TLS with a fresh self-signed certificate for 127.0.0.1:
/// the https base URL and the certificate (PEM) a client must be told to trust.
pub async fn serve_tls(router: Router) -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key.into())
    .expect("server config");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("https://{}", tcp.local_addr().expect("addr"));
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve tls") });
    (base, certified.cert.pem())
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that refuses the certificate just fails its handshake.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// An upstream that redirects, and one that shows the headers it received.
fn header_upstream(redirect_to: String) -> Router {
    Router::new()
        .route("/redirect", get(move || async move { (StatusCode::FOUND, [("location", redirect_to)]).into_response() }))
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let seen: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
                    .collect();
                Json(Value::Object(seen))
            }),
        )
}

/// Audit rows (tool, outcome) of `key_id`, once at least `min` have been written.
async fn audit_rows(app: &TestApp, key_id: &str, min: usize) -> Vec<(String, String)> {
    crate::helpers::audited_calls(app, key_id, min)
        .await
        .into_iter()
        .map(|(tool, outcome, _, _)| (tool, outcome))
        .collect()
}

async fn audit_count(app: &TestApp, key_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE key_id = $1 AND action = 'tool.call'",
    )
    .bind(key_id)
    .fetch_one(app.state.pool())
    .await
    .expect("count");
    n
}

fn rmcp_config(url: String, key: &str) -> StreamableHttpClientTransportConfig {
    StreamableHttpClientTransportConfig::with_uri(url).auth_header(key.to_owned())
}

both_engines! {
    async fn another_tenants_key_is_401_and_audited_nowhere(app: TestApp) {
        // A service user named like one of acme's, in another tenant.
        app.create_service_user("ci-bot").await;
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let su = expect_json(app.post_as(&globex_admin, "/api/v1/tenants/globex/service-users", &json!({"name": "ci-bot", "owner_email": "ops@globex.test"})).await, StatusCode::CREATED).await;
        let key = expect_json(app.post_as(&globex_admin, "/api/v1/tenants/globex/keys", &json!({"service_user_id": su["id"], "name": "k"})).await, StatusCode::CREATED).await;
        let (plain, key_id) = (key["key"].as_str().expect("key"), key["id"].as_str().expect("id"));

        let upstream = serve_plain(Router::new().nest_service("/mcp", demo::mcp_service())).await;
        let acme_gateway = gateway(&app, &upstream).await;
        let refused = ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(rmcp_config(format!("{acme_gateway}/mcp"), plain)))
            .await;
        assert!(refused.is_err(), "globex's key must not initialize through acme's gateway");
        let raw = reqwest::Client::new().get(format!("{acme_gateway}/mcp")).bearer_auth(plain).send().await.expect("send");
        assert_eq!(raw.status(), StatusCode::UNAUTHORIZED);
        assert!(raw.headers().contains_key("www-authenticate"));
        // Refused when revoked too, and still not a line in anyone's audit.
        expect_json(app.post_as(&globex_admin, &format!("/api/v1/tenants/globex/keys/{key_id}/revoke"), &json!({})).await, StatusCode::OK).await;
        let raw = reqwest::Client::new().get(format!("{acme_gateway}/mcp")).bearer_auth(plain).send().await.expect("send");
        assert_eq!(raw.status(), StatusCode::UNAUTHORIZED);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(audit_count(&app, key_id).await, 0, "acme's gateway audits nothing of globex");

        // The explicit all-tenants gateway admits a live globex key, as globex.
        let live = expect_json(app.post_as(&globex_admin, "/api/v1/tenants/globex/keys", &json!({"service_user_id": su["id"], "name": "k2"})).await, StatusCode::CREATED).await;
        let shared_gateway = gateway_with(&app, &upstream, TenantScope::Any, None).await;
        let client = ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(rmcp_config(format!("{shared_gateway}/mcp"), live["key"].as_str().expect("key"))))
            .await
            .expect("initialize");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-tenant"], "globex");
        let _ = client.cancel().await;
    }

    async fn redirects_pass_back_and_forwarding_headers_are_the_gateways(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let plain = key["key"].as_str().expect("key");
        let stolen = Arc::new(AtomicUsize::new(0));
        let counter = stolen.clone();
        let elsewhere = serve_plain(Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "thanks" }
        }))
        .await;
        let upstream = serve_plain(header_upstream(format!("{elsewhere}/steal"))).await;
        let gateway = gateway(&app, &upstream).await;
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

        let res = client.get(format!("{gateway}/redirect")).bearer_auth(plain).send().await.expect("send");
        assert_eq!(res.status(), StatusCode::FOUND, "the 3xx reaches the client");
        assert_eq!(res.headers()["location"], format!("{elsewhere}/steal").as_str());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stolen.load(Ordering::SeqCst), 0, "the gateway followed no redirect");

        let res = client
            .get(format!("{gateway}/headers"))
            .bearer_auth(plain)
            .header("x-forwarded-for", "6.6.6.6")
            .header("forwarded", "for=6.6.6.6;host=evil.test")
            .header("x-forwarded-host", "evil.test")
            .header("x-forwarded-proto", "https")
            .header("x-real-ip", "6.6.6.6")
            .header("connection", "x-hop-secret")
            .header("x-hop-secret", "only for the next hop")
            .send()
            .await
            .expect("send");
        let seen = expect_json(res, StatusCode::OK).await;
        let gateway_host = gateway.trim_start_matches("http://");
        assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{seen}");
        assert_eq!(seen["forwarded"], format!("for=\"127.0.0.1\";proto=http;host=\"{gateway_host}\"").as_str(), "{seen}");
        assert_eq!(seen["x-forwarded-host"], gateway_host, "{seen}");
        assert_eq!(seen["host"], upstream.trim_start_matches("http://"), "the upstream is sent its own Host: {seen}");
        assert_eq!(seen["x-forwarded-proto"], "http", "{seen}");
        assert!(seen.get("x-real-ip").is_none(), "{seen}");
        assert!(seen.get("x-hop-secret").is_none(), "a header named in Connection is hop-by-hop: {seen}");
        assert!(seen.get("authorization").is_none(), "{seen}");
        assert_eq!(seen["x-keysmith-tenant"], "acme");
    }

    async fn audit_names_the_method_and_tools_list_shows_only_allowed_tools(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"]})).await;
        let upstream = serve_plain(Router::new().nest_service("/mcp", demo::mcp_service())).await;
        let gateway = gateway(&app, &upstream).await;
        let client = ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(rmcp_config(format!("{gateway}/mcp"), key["key"].as_str().expect("key"))))
            .await
            .expect("initialize");
        let tools = client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["whoami"], "echo is hidden from a key that may not call it");
        call_text(&client, "whoami", json!({})).await.expect("whoami");
        assert!(call_text(&client, "echo", json!({"text": "x"})).await.is_err());
        let _ = client.cancel().await;

        let rows = audit_rows(&app, key["id"].as_str().expect("id"), 6).await;
        let has = |tool: &str, outcome: &str| rows.iter().any(|(t, o)| t == tool && o == outcome);
        assert!(has("initialize", "allowed"), "{rows:?}");
        assert!(has("notifications/initialized", "allowed"), "{rows:?}");
        assert!(has("tools/list", "allowed"), "{rows:?}");
        assert!(has("whoami", "allowed"), "{rows:?}");
        assert!(has("echo", "denied"), "{rows:?}");
        assert!(!rows.iter().any(|(t, _)| t.starts_with("POST ")), "a JSON-RPC message is never audited as POST /path: {rows:?}");
        // Each line says how the call ended and how long it took.
        let outcomes: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as("SELECT tool, status, duration_us FROM audit_events WHERE key_id = $1 AND action = 'tool.call'")
            .bind(key["id"].as_str().expect("id"))
            .fetch_all(app.state.pool())
            .await
            .expect("outcomes");
        let of = |tool: &str| outcomes.iter().find(|(t, _, _)| t == tool).cloned().expect(tool);
        let (_, status, duration) = of("whoami");
        assert_eq!(status, Some(200), "{outcomes:?}");
        assert!(duration.is_some_and(|us| us > 0), "{outcomes:?}");
        assert_eq!(of("echo").1, Some(403), "the layer's own refusal: {outcomes:?}");
        assert_eq!(of("notifications/initialized").1, Some(202), "{outcomes:?}");
    }

    async fn an_upstream_answer_framed_two_ways_reaches_no_client(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let plain = key["key"].as_str().expect("key");
        // Read by its length the answer ends after "0\r\n\r\n"; read chunked,
        // another answer follows on the same connection, for whichever
        // client's request comes next.
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let upstream = format!("http://{}", listener.local_addr().expect("bound"));
        let counted = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0; 4096];
                    while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret";
                        if socket.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let gateway = gateway(&app, &upstream).await;
        for _ in 0..2 {
            let res = reqwest::Client::new().get(format!("{gateway}/mcp")).bearer_auth(plain).send().await.expect("send");
            assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
            assert_eq!(res.text().await.expect("text"), "unusable upstream answer");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a connection whose answer was refused carried another");
    }

    async fn https_upstream_and_remote_verifier_trust_only_a_configured_root(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let plain = key["key"].as_str().expect("key");

        // The remote verifier asks the Keysmith server over HTTPS.
        let (keysmith_https, keysmith_pem) = serve_tls(keysmith::app::build_app(app.state.clone())).await;
        let verify_only = app.management_key_with(&app.tenant, keysmith::domain::Scope::verify()).await;
        let trusted = RemoteVerifier::with_roots(&keysmith_https, verify_only.clone(), Some(keysmith_pem.as_bytes())).expect("client");
        let verdict = trusted.verify(plain).await.expect("reachable over TLS");
        assert_eq!(verdict.expect("valid").key_id, key["id"].as_str().expect("id"));
        let untrusting = RemoteVerifier::new(&keysmith_https, verify_only).expect("client");
        assert!(untrusting.verify(plain).await.is_err(), "an unknown certificate is a backend failure (503), never a pass");

        // The gateway forwards to an HTTPS upstream it was told to trust.
        let (upstream, upstream_pem) = serve_tls(Router::new().nest_service("/mcp", demo::mcp_service())).await;
        let scope = || TenantScope::only("acme");
        let gateway = gateway_with(&app, &upstream, scope(), Some(upstream_pem.as_bytes())).await;
        let client = ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(rmcp_config(format!("{gateway}/mcp"), plain)))
            .await
            .expect("initialize over https upstream");
        let who: Value = serde_json::from_str(&call_text(&client, "whoami", json!({})).await.expect("whoami")).expect("json");
        assert_eq!(who["identity"]["x-keysmith-service-user"], "ci-bot");
        let _ = client.cancel().await;
        let untrusting_gateway = gateway_with(&app, &upstream, scope(), None).await;
        let res = reqwest::Client::new().get(format!("{untrusting_gateway}/mcp")).bearer_auth(plain).send().await.expect("send");
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }
}
