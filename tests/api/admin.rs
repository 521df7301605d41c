//! The admin UI over HTTP: sign-in, sessions, CSRF, headers, tenant isolation.

use keysmith::domain::{
    Email,
    people::accounts::{self, Password, Role},
};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::json;

use crate::{
    both_engines,
    helpers::{TestApp, expect_json},
};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// An account with `PASSWORD`; a superadmin administers the whole instance.
pub(crate) async fn account(
    app: &TestApp,
    email: &str,
    superadmin: bool,
) -> accounts::AdminAccount {
    accounts::create(
        app.state.pool(),
        &Email::parse(email).expect("email"),
        Password::parse(PASSWORD.into()).expect("password"),
        superadmin,
        app.now(),
    )
    .await
    .expect("account")
}

pub(crate) async fn admin_user(app: &TestApp, email: &str, role: Role) {
    let user = account(app, email, false).await;
    accounts::grant(app.state.pool(), &app.tenant.id, &user.id, role, app.now())
        .await
        .expect("grant");
}

pub(crate) fn browser() -> reqwest::Client {
    keysmith_verify::tls::install_default_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

pub(crate) async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/admin/sign-in"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .expect("sign in")
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("keysmith="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// The HTML of the page at `path`, as `client` (signed in or not) gets it.
pub(crate) async fn html_of(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let res = client.get(app.url(path)).send().await.expect("page");
    res.text().await.expect("html")
}

pub(crate) fn csrf_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"csrf\" value=\"")
        .expect("csrf field on the page");
    rest.split('"').next().expect("token").to_owned()
}

both_engines! {
    async fn sign_in_session_and_sign_out(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        let res = client.get(app.url("/admin/api-keys")).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "signed out: to the sign-in page");
        assert_eq!(res.headers()["location"], "/admin/sign-in");

        let first = sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        assert_eq!(first.status(), StatusCode::SEE_OTHER);
        let first_cookie = session_cookie(&first).expect("session cookie");
        let set_cookie = first.headers()["set-cookie"].to_str().expect("ascii").to_ascii_lowercase();
        assert!(set_cookie.contains("httponly") && set_cookie.contains("samesite=strict"), "{set_cookie}");

        let page = client.get(app.url("/admin/api-keys")).send().await.expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        assert!(html.contains("API keys") && html.contains("admin@acme.test"));

        // Signing in again issues a new session id; the old one is gone.
        let second = sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let second_cookie = session_cookie(&second).expect("new cookie");
        assert_ne!(first_cookie, second_cookie);
        let stale = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");
        let res = stale.get(app.url("/admin/api-keys")).header("cookie", &first_cookie).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "the pre-sign-in id is dead");

        // Sign-out ends the session on the server: replaying its cookie fails.
        let csrf = csrf_of(&client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html"));
        let out = client.post(app.url("/admin/sign-out")).form(&[("csrf", csrf.as_str())]).send().await.expect("sign out");
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let res = stale.get(app.url("/admin/api-keys")).header("cookie", &second_cookie).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "an old session id is rejected after sign-out");
    }

    async fn unknown_user_and_wrong_password_look_the_same_and_are_throttled(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        let wrong = sign_in(&app, &client, "admin@acme.test", "not the password").await;
        let unknown = sign_in(&app, &client, "nobody@acme.test", "not the password").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        let wrong = wrong.text().await.expect("html").replace("admin@acme.test", "EMAIL");
        let unknown = unknown.text().await.expect("html").replace("nobody@acme.test", "EMAIL");
        assert_eq!(wrong, unknown, "identical answers for unknown user and bad password");

        for _ in 0..5 {
            sign_in(&app, &client, "admin@acme.test", "guess").await;
        }
        let throttled = sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        assert_eq!(throttled.status(), StatusCode::UNAUTHORIZED, "too many failures: even the right password waits");
        app.clock.advance(time::Duration::minutes(16));
        assert_eq!(sign_in(&app, &client, "admin@acme.test", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    }

    async fn csrf_and_cross_site_posts_are_refused(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let csrf = csrf_of(&client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html"));
        let res = client.post(app.url("/admin/sign-out")).form(&[("csrf", "forged")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = client.post(app.url("/admin/sign-out")).header("origin", "https://evil.example").form(&[("csrf", csrf.as_str())]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = client.post(app.url("/admin/sign-out")).header("sec-fetch-site", "cross-site").form(&[("csrf", csrf.as_str())]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(client.get(app.url("/admin/api-keys")).send().await.expect("page").status(), StatusCode::OK, "still signed in");
        let res = client.post(app.url("/admin/sign-in")).header("origin", "https://evil.example").form(&[("email", "admin@acme.test"), ("password", PASSWORD)]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "no login CSRF");
        // What Chromium really sends for our own form (found by running it): Sec-Fetch-Site decides.
        let res = client.post(app.url("/admin/sign-in")).header("sec-fetch-site", "same-origin").header("origin", "null").form(&[("email", "admin@acme.test"), ("password", PASSWORD)]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "a same-origin browser post signs in");
    }

    async fn security_headers_on_every_page(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        let mut responses = vec![client.get(app.url("/admin/sign-in")).send().await.expect("page")];
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        responses.push(client.get(app.url("/admin/api-keys")).send().await.expect("page"));
        responses.push(client.get(app.url("/admin/api-keys?tenant=nope")).send().await.expect("404 page"));
        for res in responses {
            let h = res.headers();
            let csp = h["content-security-policy"].to_str().expect("csp");
            assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["referrer-policy"], "same-origin");
            assert_eq!(h["cache-control"], "no-store");
        }
    }

    async fn keys_page_lists_this_tenant_only(app: TestApp) {
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"name": "deploy-key"})).await;
        expect_json(app.rotate_key(key["id"].as_str().expect("id")).await, StatusCode::CREATED).await;
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let globex_su = expect_json(app.post_as(&globex_admin, "/api/v1/tenants/globex/service-users", &json!({"name": "secret-bot", "owner_email": "g@globex.test"})).await, StatusCode::CREATED).await;
        expect_json(app.post_as(&globex_admin, "/api/v1/tenants/globex/keys", &json!({"service_user_id": globex_su["id"], "name": "globex-key"})).await, StatusCode::CREATED).await;

        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let html = client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
        assert!(html.contains("deploy-key") && html.contains("ci-bot"));
        assert!(html.contains("badge rotating") && html.contains("works until"), "the old key shows its cutoff");
        assert!(!html.contains("globex-key") && !html.contains("secret-bot"), "nothing of another tenant");
        let res = client.get(app.url("/admin/api-keys?tenant=globex")).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "another tenant is 404, never 403");
        let filtered = client.get(app.url("/admin/api-keys?status=revoked")).send().await.expect("page").text().await.expect("html");
        assert!(filtered.contains("No keys here yet"));
    }
}

pub(crate) fn field(html: &str, name: &str) -> String {
    let (_, rest) = html
        .split_once(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} on the page"));
    rest.split('"').next().expect("value").to_owned()
}

fn plaintext_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("class=\"plaintext\" readonly value=\"")
        .expect("the key is shown");
    rest.split('"').next().expect("key").to_owned()
}

both_engines! {
    async fn create_shows_the_key_once_and_a_repost_mints_nothing(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
        let form = [
            ("csrf", csrf_of(&page)),
            ("form_token", field(&page, "form_token")),
            ("tenant", "acme".to_owned()),
            ("service_user_id", su.clone()),
            ("name", "ui-key".to_owned()),
            ("expires_in_days", "30".to_owned()),
            ("allowed_tools", "whoami, files/*".to_owned()),
        ];
        let res = client.post(app.url("/admin/api-keys")).form(&form).send().await.expect("create");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.expect("html");
        let key = plaintext_of(&html);
        assert!(html.contains("only time"), "a clear warning");
        assert_eq!(app.verify(&key, Some("files/read")).await["code"], "valid", "the copied key works");
        let key_count = app.count("api_keys").await;

        // The browser's resubmit (refresh of the POST result) mints nothing.
        let again = client.post(app.url("/admin/api-keys")).form(&form).send().await.expect("re-post");
        assert_eq!(again.status(), StatusCode::CONFLICT);
        assert!(!again.text().await.expect("html").contains("ks_"));
        assert_eq!(app.count("api_keys").await, key_count);

        // No GET ever shows it again.
        let id = key.split('_').nth(1).expect("id");
        for path in ["/admin/api-keys".to_owned(), format!("/admin/api-keys/{id}")] {
            let html = client.get(app.url(&path)).send().await.expect("page").text().await.expect("html");
            assert!(html.contains("ui-key"));
            assert!(!html.contains(&key), "{path} shows the key again");
        }
    }

    async fn rotate_and_revoke_from_the_key_page(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Owner).await;
        let su = app.create_service_user("ci-bot").await;
        let old = app.create_key(&su, json!({"name": "deploy"})).await;
        let id = old["id"].as_str().expect("id");
        // Tool calls as the verification layer audits them, for the histogram.
        let (sink, flusher) = keysmith_verify::audit::spawn_sql_audit(app.state.pool().clone(), 16, 16);
        for allowed in [true, true, false] {
            sink.record(keysmith_verify::audit::AuditRecord {
                tenant_id: app.tenant.id.as_str().into(),
                key_id: id.into(),
                service_user_id: su.as_str().into(),
                grant_id: None,
                client_id: None,
                tool: "whoami".into(),
                allowed,
                reason: if allowed { "valid" } else { "tool_not_allowed" },
                request_id: None,
                at: app.now(),
                status: Some(200),
                duration_us: Some(1500),
            })
            .await;
        }
        flusher.shutdown().await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url(&format!("/admin/api-keys/{id}"))).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("Rotate") && page.contains("Revoke now"));
        let rotate = [("csrf", csrf_of(&page)), ("tenant", "acme".to_owned()), ("form_token", field(&page, "form_token"))];
        let res = client.post(app.url(&format!("/admin/api-keys/{id}/rotate"))).form(&rotate).send().await.expect("rotate");
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.expect("html");
        let new_key = plaintext_of(&html);
        let cutoff = crate::keys::rfc3339(app.now() + time::Duration::days(7)).replace('T', " ").replace('Z', " UTC");
        assert!(html.contains(&cutoff), "states until when the old key works: {cutoff}");
        assert_eq!(app.verify_code(&new_key).await, "valid");
        assert_eq!(app.verify_code(old["key"].as_str().expect("key")).await, "valid", "overlap");
        let again = client.post(app.url(&format!("/admin/api-keys/{id}/rotate"))).form(&rotate).send().await.expect("re-post");
        assert_eq!(again.status(), StatusCode::CONFLICT);

        let list = client.get(app.url("/admin/api-keys")).send().await.expect("list").text().await.expect("html");
        assert!(list.contains("badge rotating") && list.contains("badge active"), "both keys, the old one rotating");

        let revoke = [("csrf", csrf_of(&page)), ("tenant", "acme".to_owned()), ("reason", "leaked".to_owned())];
        let unconfirmed = client.post(app.url(&format!("/admin/api-keys/{id}/revoke"))).form(&revoke).send().await.expect("revoke");
        assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY, "revoking needs the confirmation");
        let mut confirmed = revoke.to_vec();
        confirmed.push(("confirm", "yes".to_owned()));
        let res = client.post(app.url(&format!("/admin/api-keys/{id}/revoke"))).form(&confirmed).send().await.expect("revoke");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.verify_code(old["key"].as_str().expect("key")).await, "revoked");
        let detail = client.get(app.url(&format!("/admin/api-keys/{id}"))).send().await.expect("page").text().await.expect("html");
        assert!(detail.contains("leaked") && detail.contains("key.revoke"), "audit trail");
        assert!(detail.contains("<svg") && detail.contains("3 (1 denied, 0 errors; p50 1.5 ms"), "histogram of calls and denials");
    }

    async fn viewers_see_but_cannot_act_and_other_tenants_are_404(app: TestApp) {
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id");
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let gsu: serde_json::Value = app.post_as(&globex_admin, "/api/v1/tenants/globex/service-users", &json!({"name": "g", "owner_email": "g@globex.test"})).await.json().await.expect("json");
        let gkey: serde_json::Value = app.post_as(&globex_admin, "/api/v1/tenants/globex/keys", &json!({"service_user_id": gsu["id"], "name": "g"})).await.json().await.expect("json");
        let gid = gkey["id"].as_str().expect("id");

        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let page = client.get(app.url(&format!("/admin/api-keys/{id}"))).send().await.expect("page").text().await.expect("html");
        assert!(!page.contains("Rotate") && !page.contains("Revoke now"), "no buttons for a viewer");
        let list = client.get(app.url("/admin/api-keys")).send().await.expect("list").text().await.expect("html");
        assert!(!list.contains("Create a key"));
        let csrf = csrf_of(&list);
        let base = [("csrf", csrf.clone()), ("tenant", "acme".to_owned()), ("form_token", "x".to_owned()), ("confirm", "yes".to_owned())];
        for path in [format!("/admin/api-keys/{id}/rotate"), format!("/admin/api-keys/{id}/revoke")] {
            let res = client.post(app.url(&path)).form(&base).send().await.expect("post");
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        }
        let create = [("csrf", csrf.clone()), ("tenant", "acme".to_owned()), ("form_token", "x".to_owned()), ("service_user_id", su.clone()), ("name", "n".to_owned())];
        assert_eq!(client.post(app.url("/admin/api-keys")).form(&create).send().await.expect("post").status(), StatusCode::FORBIDDEN);
        assert_eq!(app.verify_code(key["key"].as_str().expect("key")).await, "valid", "nothing changed");

        // Another tenant's key: 404 on every page and action, even through acme's path.
        assert_eq!(client.get(app.url(&format!("/admin/api-keys/{gid}"))).send().await.expect("page").status(), StatusCode::NOT_FOUND);
        assert_eq!(client.get(app.url(&format!("/admin/api-keys/{gid}?tenant=globex"))).send().await.expect("page").status(), StatusCode::NOT_FOUND);
        for path in [format!("/admin/api-keys/{gid}/rotate"), format!("/admin/api-keys/{gid}/revoke")] {
            let globex_form = [("csrf", csrf.clone()), ("tenant", "globex".to_owned()), ("form_token", "x".to_owned()), ("confirm", "yes".to_owned())];
            assert_eq!(client.post(app.url(&path)).form(&globex_form).send().await.expect("post").status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
