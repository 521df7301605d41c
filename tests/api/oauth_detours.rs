//! Sign-in detours at `/authorize`: a person who must first choose a new
//! password (after a reset) or set up TOTP (their tenant requires it) comes
//! back to the authorization request afterwards, not to the admin home. The
//! request is remembered in the server-side session, only as a path of this
//! origin to an authorization endpoint: an external target is never followed.

use std::time::Duration;

use keysmith::domain::{
    Actor,
    people::{accounts::Role, totp, totp::TotpSecret},
};
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, html_of},
    both_engines,
    chromium::Browser,
    helpers::{TestApp, expect_json},
    oauth_code::{REDIRECT, authorize_query, authorize_url, connector, pkce, token_request},
    oauth_consent_browser::{client_site, param, params, redirected_to, sign_in_to_answer},
};

const OWNER: &str = "owner@acme.test";
const NEW_PASSWORD: &str = "a brand new long passphrase";

/// As after an administrator's reset: the next sign-in must choose a new password.
async fn must_change_password(app: &TestApp, email: &str) {
    sqlx::query("UPDATE admin_users SET must_change_password = 1 WHERE email = $1")
        .bind(email)
        .execute(app.state.pool())
        .await
        .expect("reset");
}

/// Where a request sent the person (`Location`), asserting it was a redirect.
fn location(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "a redirect");
    res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn sign_in_to(app: &TestApp, person: &reqwest::Client, password: &str, next: &str) -> String {
    let form = [("email", OWNER), ("password", password), ("next", next)];
    let res = person
        .post(app.url("/admin/sign-in"))
        .form(&form)
        .send()
        .await
        .expect("sign in");
    location(&res)
}

/// Changes the password on the account page; where the person goes next.
async fn change_password(
    app: &TestApp,
    person: &reqwest::Client,
    current: &str,
    new: &str,
) -> String {
    let csrf = csrf_of(&html_of(app, person, "/admin/account").await);
    let form = [
        ("csrf", csrf.as_str()),
        ("current", current),
        ("new", new),
        ("confirm", new),
    ];
    let res = person
        .post(app.url("/admin/account/password"))
        .header("origin", &app.base)
        .form(&form)
        .send()
        .await
        .expect("post");
    location(&res)
}

both_engines! {
    async fn a_detour_returns_only_to_the_authorization_request_that_made_it(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        admin_user(&app, OWNER, Role::Owner).await;
        must_change_password(&app, OWNER).await;
        let person = browser();

        // An external `next` is never followed, nor remembered for after the detour.
        let evil = "https://evil.example/oauth/acme/authorize?client_id=x";
        assert_eq!(sign_in_to(&app, &person, PASSWORD, evil).await, "/admin/api-keys");
        assert_eq!(location(&person.get(app.url("/admin/api-keys")).send().await.expect("get")), "/admin/account");
        assert_eq!(change_password(&app, &person, PASSWORD, NEW_PASSWORD).await, "/admin/account?changed=1");

        // The authorization request itself makes the detour: it is remembered, and followed once.
        must_change_password(&app, OWNER).await;
        let (_, challenge) = pkce();
        let query = authorize_query(&client.client_id, &challenge, "st-detour", "tools:whoami");
        let authorize = authorize_url(&app, &query);
        let target = authorize.strip_prefix(&app.base).expect("a path of this origin").to_owned();
        assert_eq!(location(&person.get(&authorize).send().await.expect("authorize")), "/admin/account");
        let page = html_of(&app, &person, "/admin/account").await;
        assert!(page.contains("An application is waiting for your answer"), "{page}");
        assert_eq!(change_password(&app, &person, NEW_PASSWORD, PASSWORD).await, target, "back to the request");
        let consent = person.get(&authorize).send().await.expect("consent");
        assert_eq!(consent.status(), StatusCode::OK);
        assert!(consent.text().await.expect("html").contains("Connect Test Connector?"));
        assert_eq!(change_password(&app, &person, PASSWORD, NEW_PASSWORD).await, "/admin/account?changed=1", "followed once");

        // A request abandoned for longer than its client would wait is dropped.
        must_change_password(&app, OWNER).await;
        assert_eq!(location(&person.get(&authorize).send().await.expect("authorize")), "/admin/account");
        app.clock.advance(time::Duration::minutes(11));
        assert_eq!(change_password(&app, &person, NEW_PASSWORD, PASSWORD).await, "/admin/account?changed=1", "stale");
    }

    async fn a_person_who_must_change_password_and_set_up_totp_comes_back_to_consent_in_chromium(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        app.create_service_user("agent").await;
        admin_user(&app, OWNER, Role::Owner).await;
        must_change_password(&app, OWNER).await;
        totp::set_tenant_requirement(app.state.pool(), "acme", true, &Actor::Cli, app.now()).await.expect("require totp");
        let (verifier, challenge) = pkce();
        let (port, mut received) = client_site(String::new()).await;
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let query = authorize_query(&client.client_id, &challenge, "st-detours", "tools:whoami");
        let authorize = authorize_url(&app, &redirected_to(query, &redirect));

        let label = format!("oauth-detours-{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            sign_in_to_answer(b, &authorize, OWNER).await;

            // First detour: the password reset by an administrator.
            b.wait_for_text("An application is waiting for your answer").await;
            assert_eq!(b.path().await, "/admin/account");
            b.fill("#current", PASSWORD).await;
            b.fill("#new", NEW_PASSWORD).await;
            b.fill("#confirm", NEW_PASSWORD).await;
            b.click("form[action='/admin/account/password'] button[type=submit]").await;

            // Second detour, on the way back: the tenant's required second factor.
            b.wait_for_text("Set up an authenticator app").await;
            assert_eq!(b.path().await, "/admin/account/totp");
            assert!(b.source().await.contains("An application is waiting for your answer"));
            let text = b.find("#totp-secret").await.text().await.expect("secret");
            let secret = TotpSecret::from_base32(text.trim()).expect("a base32 secret");
            b.fill("#code", &secret.code_at(app.now()).expect("code")).await;
            b.click("main form button[type=submit]").await;
            b.wait_for_text("Continue to the connection request").await;
            b.click("#totp-continue").await;

            b.wait_for_text("Connect Test Connector?").await;
            b.screenshot("consent-after-detours").await;
            b.click("button[value=approve]").await;
            let approved = params(&tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("a redirect").expect("query"));
            assert_eq!(param(&approved, "state"), "st-detours");
            let code = param(&approved, "code").to_owned();
            let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
                ("redirect_uri", &redirect), ("code_verifier", &verifier)]).await;
            assert_eq!(expect_json(res, StatusCode::OK).await["scope"], "tools:whoami");
        }).await;
    }
}
