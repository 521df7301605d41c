//! The consent page in real headless Chromium: a person signs in through
//! the admin sign-in and comes back to the request, denies it; then a
//! client on another site (`localhost`) sends the signed-in person to the
//! authorization URL, the page re-enters the request from Keysmith's own
//! origin (its SameSite=Strict cookie is withheld on a cross-site
//! navigation), and the person approves a subset of the scopes. The
//! client's loopback redirect (RFC 8252, any port) receives the answers:
//! the browser followed the form's redirect under the page's CSP.

use std::time::Duration;

use axum::{Router, extract::RawQuery, response::Html, routing::get};
use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use tokio::sync::mpsc;

use crate::{
    admin::{PASSWORD, admin_user},
    both_engines,
    chromium::Browser,
    helpers::expect_json,
    oauth_code::{REDIRECT, authorize_query, authorize_url, connector, pkce, token_request},
};

/// A client on `127.0.0.1:<port>`: `/start` links to `authorize`, and
/// `/callback` hands every query it receives to the test.
pub(crate) async fn client_site(authorize: String) -> (u16, mpsc::Receiver<String>) {
    let (sender, received) = mpsc::channel(4);
    let start = format!(
        "<!doctype html><a id=\"go\" href=\"{}\">Connect</a>",
        authorize.replace('&', "&amp;")
    );
    let app = Router::new()
        .route("/start", get(move || async move { Html(start) }))
        .route(
            "/callback",
            get(move |RawQuery(query): RawQuery| async move {
                let _ = sender.send(query.unwrap_or_default()).await;
                Html("<!doctype html><p>Connected</p>")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("client site") });
    (port, received)
}

pub(crate) fn params(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `query` with its `redirect_uri` replaced by `redirect` (a client site's port).
pub(crate) fn redirected_to(
    mut query: Vec<(String, String)>,
    redirect: &str,
) -> Vec<(String, String)> {
    for (name, value) in &mut query {
        if name == "redirect_uri" {
            redirect.clone_into(value);
        }
    }
    query
}

/// Opens `authorize` signed out and signs in as `email` on the page it leads to.
pub(crate) async fn sign_in_to_answer(b: &Browser, authorize: &str, email: &str) {
    b.goto(authorize).await;
    b.wait_for_text("Sign in to answer an application").await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("main form button[type=submit]").await;
}

both_engines! {
    async fn a_person_signs_in_denies_then_approves_from_another_site_in_chromium(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        let (verifier, challenge) = pkce();
        // The client's redirect on its own port, allowed for a loopback redirect URI.
        let (port, mut received) = client_site(String::new()).await;
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let query = redirected_to(authorize_query(&client.client_id, &challenge, "st-browser", "tools:whoami tools:files/*"), &redirect);
        let authorize = authorize_url(&app, &query);
        let (start_port, mut started) = client_site(authorize.clone()).await;
        let issuer = format!("{}/oauth/acme", app.state.config.public_url);

        let label = format!("oauth-{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            // Signed out: the sign-in page, then back to the request.
            sign_in_to_answer(b, &authorize, "owner@acme.test").await;
            b.wait_for_text("Connect Test Connector?").await;
            b.screenshot("oauth-consent").await;
            b.click("button[value=deny]").await;
            let denied = params(&tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("a redirect").expect("query"));
            assert_eq!(param(&denied, "error"), "access_denied");
            assert_eq!(param(&denied, "state"), "st-browser");
            assert_eq!(param(&denied, "iss"), issuer);

            // From another site: the Strict cookie is withheld, the page re-enters from this origin.
            b.goto(&format!("http://localhost:{start_port}/start")).await;
            b.click("#go").await;
            b.wait_for_text("Connect Test Connector?").await;
            assert!(b.source().await.contains("owner@acme.test"), "still signed in, no second sign-in");
            b.click("input[value='tools:files/*']").await;
            b.click("button[value=approve]").await;
            let approved = params(&tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("a redirect").expect("query"));
            assert_eq!(param(&approved, "state"), "st-browser");
            assert_eq!(param(&approved, "iss"), issuer);
            let code = param(&approved, "code").to_owned();
            assert!(!code.is_empty(), "{approved:?}");
            let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
                ("redirect_uri", &redirect), ("code_verifier", &verifier)]).await;
            let tokens = expect_json(res, StatusCode::OK).await;
            assert_eq!(tokens["scope"], "tools:whoami", "the unticked scope is not granted");
        }).await;
        let _ = (started.try_recv(), su);
    }
}
