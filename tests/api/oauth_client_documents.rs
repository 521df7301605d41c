//! Client ID metadata documents: a client_id that is an https URL is
//! fetched with the outbound address guard (the webhook one), checked
//! (its client_id is its own URL, a public client) and cached. The
//! documents are served over real TLS from a local server whose
//! self-signed certificate the app is told to trust.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Json, Router,
    http::{StatusCode, header},
    response::{IntoResponse, Redirect},
    routing::get,
};
use serde_json::json;

use crate::{both_engines, gateway_trust::serve_tls, helpers::TestApp};
use keysmith::domain::oauth::clients::{ClientKind, ClientRefused, OAuthClient};

/// A document server: `/good.json` names itself, `/liar.json` names
/// another URL, `/moved.json` redirects to the good one, `/huge.json` is
/// over 64 KiB, `/stale.json` answers 404; every fetch is counted.
async fn document_server() -> (String, String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let document = |path: &str, base: &str, client_id: Option<String>| {
        Json(json!({
            "client_id": client_id.unwrap_or_else(|| format!("{base}{path}")),
            "client_name": "Doc Client",
            "client_uri": "https://doc.example",
            "redirect_uris": ["http://127.0.0.1/callback", "https://doc.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }))
    };
    let counted = |fetches: &Arc<AtomicUsize>| {
        fetches.fetch_add(1, Ordering::SeqCst);
    };
    let (f1, f2, f3, f4, f5) = (
        fetches.clone(),
        fetches.clone(),
        fetches.clone(),
        fetches.clone(),
        fetches.clone(),
    );
    let (b1, b2, b3) = (base.clone(), base.clone(), base.clone());
    let router = Router::new()
        .route(
            "/good.json",
            get(move || async move {
                counted(&f1);
                (
                    [(header::CACHE_CONTROL, "max-age=3600")],
                    document("/good.json", b1.get().expect("base"), None),
                )
            }),
        )
        .route(
            "/liar.json",
            get(move || async move {
                counted(&f2);
                document(
                    "/liar.json",
                    b2.get().expect("base"),
                    Some("https://claude.ai/oauth/client.json".into()),
                )
            }),
        )
        .route(
            "/moved.json",
            get(move || async move {
                counted(&f3);
                Redirect::temporary(&format!("{}/good.json", b3.get().expect("base")))
            }),
        )
        .route(
            "/huge.json",
            get(move || async move {
                counted(&f4);
                Json(json!({"padding": "x".repeat(70 * 1024)}))
            }),
        )
        .route(
            "/stale.json",
            get(move || async move {
                counted(&f5);
                StatusCode::NOT_FOUND.into_response()
            }),
        );
    let (url, pem) = serve_tls(router).await;
    base.set(url.clone()).expect("once");
    (url, pem, fetches)
}

/// The app again, trusting `pem` and fetching from private addresses.
pub(crate) async fn trusting(app: TestApp, pem: &str) -> TestApp {
    let ca = app.db.dir.path().join("documents-ca.pem");
    std::fs::write(&ca, pem).expect("write ca");
    let clock = app.clock.clone();
    let db = app.stop().await;
    let env = [
        ("KEYSMITH_OAUTH_CLIENT_ALLOW_PRIVATE", "1".to_owned()),
        ("KEYSMITH_OAUTH_CLIENT_CA_FILE", ca.display().to_string()),
    ];
    TestApp::spawn_with(db, &env, Some(clock)).await
}

async fn resolve(app: &TestApp, client_id: &str) -> Result<OAuthClient, ClientRefused> {
    app.state
        .oauth_clients
        .resolve(app.state.pool(), &app.tenant.id, client_id)
        .await
        .expect("db")
}

fn refusal(verdict: Result<OAuthClient, ClientRefused>) -> String {
    match verdict {
        Err(ClientRefused::Document(why)) => why,
        other => panic!("expected a refused document, got {other:?}"),
    }
}

both_engines! {
    async fn a_document_on_a_private_address_is_refused_by_default(app: TestApp) {
        let (base, _pem, fetches) = document_server().await;
        let why = refusal(resolve(&app, &format!("{base}/good.json")).await);
        assert!(why.contains("loopback"), "{why}");
        assert!(!why.contains("WEBHOOK"), "the hint is not the webhook one: {why}");
        assert_eq!(fetches.load(Ordering::SeqCst), 0, "refused before any connection");
        // The same guard for every spelling of a private host.
        for private in ["https://10.0.0.1/c.json", "https://169.254.169.254/latest/meta-data.json",
                        "https://[::1]/c.json", "https://localhost/c.json", "https://[fd00::1]/c.json"] {
            let why = refusal(resolve(&app, private).await);
            assert!(why.contains("address"), "{private}: {why}");
        }
    }

    async fn a_valid_document_resolves_and_is_cached(app: TestApp) {
        let (base, pem, fetches) = document_server().await;
        let app = trusting(app, &pem).await;
        let client_id = format!("{base}/good.json");
        let client = resolve(&app, &client_id).await.expect("resolved");
        assert_eq!(client.kind, ClientKind::MetadataDocument);
        assert_eq!(client.client_id, client_id);
        assert_eq!(client.name, "Doc Client");
        assert_eq!(client.origin, base, "the document's own origin, not its client_uri");
        assert_eq!(client.client_uri.as_deref(), Some("https://doc.example"));
        assert!(!client.is_confidential());
        assert!(client.authenticate(&app.state.peppers, None));
        assert!(client.redirect_allowed("http://127.0.0.1:40123/callback"));
        assert!(client.redirect_allowed("https://doc.example/cb"));
        assert!(!client.redirect_allowed("https://evil.example/cb"));
        // Any tenant, any number of times: one fetch while max-age lasts.
        let globex = app.create_tenant("globex").await;
        for _ in 0..3 {
            let again = app.state.oauth_clients.resolve(app.state.pool(), &globex.id, &client_id)
                .await.expect("db").expect("cached");
            assert_eq!(again, client);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    async fn a_tenant_that_refuses_documents_fetches_none_and_says_so(app: TestApp) {
        let (base, pem, fetches) = document_server().await;
        let app = trusting(app, &pem).await;
        let globex = app.create_tenant("globex").await;
        let key = app.admin_key.clone();
        let off = crate::tenant_policy::patch(&app, &key, "acme", json!({"oauth_metadata_documents": false})).await;
        assert_eq!(off.status(), StatusCode::OK);
        let client_id = format!("{base}/good.json");
        let why = refusal(resolve(&app, &client_id).await);
        assert!(why.contains("does not accept client ID metadata documents"), "{why}");
        assert_eq!(fetches.load(Ordering::SeqCst), 0, "refused before any fetch");
        let metadata: serde_json::Value = app.client.get(app.url("/.well-known/oauth-authorization-server/oauth/acme"))
            .send().await.expect("metadata").json().await.expect("json");
        assert_eq!(metadata["client_id_metadata_document_supported"], false, "{metadata}");
        let query = crate::oauth_code::authorize_query(&client_id, "x".repeat(43).as_str(), "st", "tools:*");
        let page = app.client.get(crate::oauth_code::authorize_url(&app, &query)).send().await.expect("authorize");
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "no redirect to a client that is not accepted");
        // Another tenant's policy is its own.
        let there = app.state.oauth_clients.resolve(app.state.pool(), &globex.id, &client_id).await.expect("db");
        assert!(there.is_ok(), "{there:?}");
        let on = crate::tenant_policy::patch(&app, &key, "acme", json!({"oauth_metadata_documents": true})).await;
        assert_eq!(on.status(), StatusCode::OK);
        assert!(resolve(&app, &client_id).await.is_ok());
    }

    async fn a_document_that_names_another_client_is_refused(app: TestApp) {
        let (base, pem, fetches) = document_server().await;
        let app = trusting(app, &pem).await;
        let why = refusal(resolve(&app, &format!("{base}/liar.json")).await);
        assert!(why.contains("not the URL it was fetched from"), "{why}");
        // The refusal is cached too: asking again costs no fetch.
        refusal(resolve(&app, &format!("{base}/liar.json")).await);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    async fn redirects_oversize_and_missing_documents_are_refused(app: TestApp) {
        let (base, pem, _fetches) = document_server().await;
        let app = trusting(app, &pem).await;
        let why = refusal(resolve(&app, &format!("{base}/moved.json")).await);
        assert!(why.contains("redirects are not followed"), "{why}");
        let why = refusal(resolve(&app, &format!("{base}/huge.json")).await);
        assert!(why.contains("64 KiB"), "{why}");
        let why = refusal(resolve(&app, &format!("{base}/stale.json")).await);
        assert!(why.contains("HTTP 404"), "{why}");
        let plain = base.replace("https://", "http://");
        let why = refusal(resolve(&app, &format!("{plain}/good.json")).await);
        assert!(why.contains("https"), "{why}");
        let why = refusal(resolve(&app, &format!("{base}/")).await);
        assert!(why.contains("path"), "{why}");
    }

    async fn an_untrusted_certificate_is_refused(app: TestApp) {
        let (base, _pem, _fetches) = document_server().await;
        let (_other_base, other_pem, _) = document_server().await;
        let app = trusting(app, &other_pem).await;
        let why = refusal(resolve(&app, &format!("{base}/good.json")).await);
        assert!(why.contains("request failed"), "{why}");
    }
}

/// A document server that accepts the connection and never answers: the
/// fetch gives up at its time cap (no timing asserted, only the refusal).
#[tokio::test]
async fn a_document_server_that_never_answers_is_given_up_on() {
    let app = TestApp::spawn(crate::helpers::Engine::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let (_, pem, _) = document_server().await;
    let app = trusting(app, &pem).await;
    let why = refusal(resolve(&app, &format!("https://{addr}/slow.json")).await);
    assert!(
        why.contains("no complete answer") || why.contains("request failed"),
        "{why}"
    );
}
