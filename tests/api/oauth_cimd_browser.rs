//! A client identified by a client ID metadata document, end to end in real
//! headless Chromium: its client_id is the https URL of its document
//! (served over real TLS; the app trusts the test certificate and allows
//! the loopback address, as the document tests do: production keeps the
//! guard), a person sees the document's name and origin on the consent
//! page and approves, and the code becomes a token that calls a tool through
//! the real `keysmith gateway --resource`; a tool outside the grant is refused.

use std::time::Duration;

use axum::{Json, Router, routing::get};
use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin::admin_user,
    both_engines,
    chromium::Browser,
    gateway::upstream,
    gateway_trust::serve_tls,
    helpers::expect_json,
    oauth_client_documents::trusting,
    oauth_code::{Connector, authorize_query_for, authorize_url, pkce, token_request},
    oauth_consent_browser::{client_site, param, params, redirected_to, sign_in_to_answer},
    oauth_gateway::{RESOURCE, call, protected_gateway},
};

/// Serves `/agent.json`, a public client's document naming its own URL,
/// with a loopback redirect (any port, RFC 8252): the base URL and the
/// certificate to trust.
async fn document_server() -> (String, String) {
    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let own = base.clone();
    let router = Router::new().route(
        "/agent.json",
        get(move || async move {
            Json(json!({
                "client_id": format!("{}/agent.json", own.get().expect("base")),
                "client_name": "Doc Agent",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }))
        }),
    );
    let (url, pem) = serve_tls(router).await;
    base.set(url.clone()).expect("once");
    (url, pem)
}

both_engines! {
    async fn a_metadata_document_client_is_approved_in_chromium_and_calls_a_tool_through_the_gateway(app: TestApp) {
        let (base, pem) = document_server().await;
        let app = trusting(app, &pem).await;
        app.create_service_user("agent").await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        let (upstream, _events) = upstream().await;
        let gateway = protected_gateway(&app, &upstream);

        let client = Connector { client_id: format!("{base}/agent.json"), secret: None };
        let (port, mut received) = client_site(String::new()).await;
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let (verifier, challenge) = pkce();
        let query = authorize_query_for(&client.client_id, &challenge, "st-cimd", "tools:whoami tools:echo", RESOURCE);
        let authorize = authorize_url(&app, &redirected_to(query, &redirect));

        let label = format!("oauth-cimd-{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            sign_in_to_answer(b, &authorize, "owner@acme.test").await;
            // The document's name, and its own origin (where the client proved control).
            b.wait_for_text("Connect Doc Agent?").await;
            let lead = b.find("p.lead").await.text().await.expect("lead");
            assert!(lead.contains(&format!("Doc Agent from {base}")), "{lead}");
            assert!(lead.contains("http://127.0.0.1:") && lead.contains(RESOURCE), "{lead}");
            b.screenshot("consent-cimd").await;
            b.click("input[value='tools:echo']").await;
            b.click("button[value=approve]").await;
            let approved = params(&tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("a redirect").expect("query"));
            assert_eq!(param(&approved, "state"), "st-cimd");
            assert_eq!(param(&approved, "iss"), format!("{}/oauth/acme", app.state.config.public_url));
            let code = param(&approved, "code").to_owned();
            assert!(!code.is_empty(), "{approved:?}");

            let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
                ("redirect_uri", &redirect), ("code_verifier", &verifier), ("resource", RESOURCE)]).await;
            let tokens = expect_json(res, StatusCode::OK).await;
            assert_eq!(tokens["scope"], "tools:whoami", "the unticked scope is not granted");
            let token = tokens["access_token"].as_str().expect("access token");
            let who: Value = serde_json::from_str(&call(&gateway, token, "whoami").await.expect("whoami through the gateway")).expect("json");
            assert!(who.to_string().contains(r#""x-keysmith-service-user":"agent""#), "acts as the chosen service user: {who}");
            let refused = call(&gateway, token, "echo").await.expect_err("echo is outside the grant");
            assert!(refused.contains("403") || refused.contains("scope") || refused.contains("not allowed"), "{refused}");
        }).await;

        let (client_id, name): (String, String) = sqlx::query_as("SELECT client_id, client_name FROM oauth_grants WHERE revoked_at IS NULL")
            .fetch_one(app.state.pool()).await.expect("one connection");
        assert_eq!((client_id.as_str(), name.as_str()), (client.client_id.as_str(), "Doc Agent"), "listed under its document");
        drop(gateway);
    }
}
