//! TOTP second factor over HTTP: enrolment, the second sign-in step with its
//! throttle and replay rules, recovery codes, requirements and resets.

use keysmith::domain::{
    people::accounts::Role,
    people::totp::{self, TotpSecret},
};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::{
    admin::{PASSWORD, account, admin_user, browser, csrf_of, html_of, sign_in},
    both_engines,
    helpers::TestApp,
};

const ADMIN: &str = "admin@acme.test";

pub(crate) fn secret_of(html: &str) -> TotpSecret {
    let (_, rest) = html
        .split_once("<code id=\"totp-secret\">")
        .expect("the secret on the page");
    TotpSecret::from_base32(rest.split('<').next().expect("secret")).expect("base32")
}

fn recovery_codes(html: &str) -> Vec<String> {
    html.split("<code class=\"recovery-code\">")
        .skip(1)
        .map(|s| s.split('<').next().expect("code").to_owned())
        .collect()
}

async fn code_now(app: &TestApp, secret: &TotpSecret) -> String {
    secret.code_at(app.now()).expect("code")
}

/// Signs in with the password and enrols TOTP; returns the secret and the recovery codes.
async fn enrol(app: &TestApp, client: &reqwest::Client) -> (TotpSecret, Vec<String>) {
    assert_eq!(
        sign_in(app, client, ADMIN, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let page = html_of(app, client, "/admin/account/totp").await;
    assert!(page.contains("<svg"), "a QR code drawn server-side");
    let secret = secret_of(&page);
    let csrf = csrf_of(&page);
    let wrong = client
        .post(app.url("/admin/account/totp"))
        .form(&[("csrf", csrf.as_str()), ("code", "000000")])
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        secret_of(&wrong.text().await.expect("html")).base32(),
        secret.base32(),
        "a mistyped code keeps the secret already scanned"
    );
    let res = client
        .post(app.url("/admin/account/totp"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", code_now(app, &secret).await.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::OK);
    let codes = recovery_codes(&res.text().await.expect("html"));
    assert_eq!(codes.len(), totp::RECOVERY_CODES);
    (secret, codes)
}

async fn second_step(app: &TestApp, client: &reqwest::Client, code: &str) -> StatusCode {
    client
        .post(app.url("/admin/sign-in/totp"))
        .form(&[("code", code)])
        .send()
        .await
        .expect("post")
        .status()
}

async fn half_signed_in(app: &TestApp) -> reqwest::Client {
    let client = browser();
    let res = sign_in(app, &client, ADMIN, PASSWORD).await;
    assert_eq!(
        res.headers()["location"],
        "/admin/sign-in/totp",
        "the password step leads to the code step"
    );
    client
}

both_engines! {
    async fn enrol_then_sign_in_with_a_code_or_a_recovery_code_once(app: TestApp) {
        admin_user(&app, ADMIN, Role::Admin).await;
        let (secret, codes) = enrol(&app, &browser()).await;
        let dump = app.db.dump();
        assert!(!dump.contains(&secret.base32()) && codes.iter().all(|c| !dump.contains(c.as_str())), "no secret or recovery code stored in clear");

        let client = half_signed_in(&app).await;
        let res = client.get(app.url("/admin/api-keys")).send().await.expect("page");
        assert_eq!(res.headers()["location"], "/admin/sign-in", "a half sign-in opens nothing");
        assert_eq!(second_step(&app, &client, &code_now(&app, &secret).await).await, StatusCode::UNAUTHORIZED, "the code used to enrol is never accepted again");
        app.clock.advance(time::Duration::seconds(30));
        assert_eq!(second_step(&app, &client, &code_now(&app, &secret).await).await, StatusCode::SEE_OTHER);
        assert_eq!(client.get(app.url("/admin/api-keys")).send().await.expect("page").status(), StatusCode::OK);

        let client = half_signed_in(&app).await;
        assert_eq!(second_step(&app, &client, &codes[3]).await, StatusCode::SEE_OTHER, "a recovery code");
        let client = half_signed_in(&app).await;
        assert_eq!(second_step(&app, &client, &codes[3]).await, StatusCode::UNAUTHORIZED, "but only once");
        assert_eq!(second_step(&app, &client, &codes[4]).await, StatusCode::SEE_OTHER);
    }

    async fn recovery_codes_outlive_a_pepper_rotation(app: TestApp) {
        admin_user(&app, ADMIN, Role::Admin).await;
        let (secret, codes) = enrol(&app, &browser()).await;
        // The operator adds pepper version 2, which becomes current.
        let clock = app.clock.clone();
        let db = app.stop().await;
        let pepper = db.dir.path().join("pepper");
        let mut text = std::fs::read_to_string(&pepper).expect("pepper");
        text.push_str(&format!("2 {}\n", "5a".repeat(32)));
        std::fs::write(&pepper, text).expect("rotate pepper");
        let app = TestApp::spawn_with(db, &[], Some(clock)).await;
        assert_eq!(app.state.peppers.current_version(), 2);

        let client = half_signed_in(&app).await;
        assert_eq!(second_step(&app, &client, &codes[0]).await, StatusCode::SEE_OTHER, "a code issued under version 1");
        let client = half_signed_in(&app).await;
        assert_eq!(second_step(&app, &client, &codes[0]).await, StatusCode::UNAUTHORIZED, "still once only");
        app.clock.advance(time::Duration::seconds(30));
        assert_eq!(second_step(&app, &client, &code_now(&app, &secret).await).await, StatusCode::SEE_OTHER, "and the TOTP secret opens");
    }

    async fn concurrent_uses_of_one_code_or_recovery_code_let_in_exactly_one(app: TestApp) {
        admin_user(&app, ADMIN, Role::Admin).await;
        let (secret, codes) = enrol(&app, &browser()).await;
        app.clock.advance(time::Duration::seconds(30));
        for code in [code_now(&app, &secret).await, codes[0].clone()] {
            let mut clients = Vec::new();
            for _ in 0..4 {
                clients.push(half_signed_in(&app).await);
            }
            let mut burst = JoinSet::new();
            for client in clients {
                let (url, code) = (app.url("/admin/sign-in/totp"), code.clone());
                burst.spawn(async move { client.post(url).form(&[("code", code)]).send().await.expect("post").status() });
            }
            let statuses = burst.join_all().await;
            assert_eq!(statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count(), 1, "{statuses:?}");
        }
    }

    async fn the_code_step_is_throttled_like_the_password_step(app: TestApp) {
        admin_user(&app, ADMIN, Role::Admin).await;
        let (secret, _) = enrol(&app, &browser()).await;
        app.clock.advance(time::Duration::seconds(30));
        let client = half_signed_in(&app).await;
        for _ in 0..5 {
            assert_eq!(second_step(&app, &client, "123456x").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(second_step(&app, &client, &code_now(&app, &secret).await).await, StatusCode::UNAUTHORIZED, "locked: even the right code");
        app.clock.advance(time::Duration::minutes(16));
        let client = half_signed_in(&app).await;
        assert_eq!(second_step(&app, &client, &code_now(&app, &secret).await).await, StatusCode::SEE_OTHER);
    }

    async fn a_tenant_can_require_it_and_a_superadmin_can_reset_it(app: TestApp) {
        admin_user(&app, ADMIN, Role::Admin).await;
        account(&app, "root@keysmith.test", true).await;
        let client = browser();
        sign_in(&app, &client, ADMIN, PASSWORD).await;
        let root_client = browser();
        sign_in(&app, &root_client, "root@keysmith.test", PASSWORD).await;
        let csrf = csrf_of(&root_client.get(app.url("/admin/tenants")).send().await.expect("page").text().await.expect("html"));
        let admin_csrf = csrf_of(&client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html"));
        let res = client.post(app.url("/admin/tenants/totp")).form(&[("csrf", admin_csrf.as_str()), ("tenant", "acme"), ("require", "on")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "only superadmins");
        let res = root_client.post(app.url("/admin/tenants/totp")).form(&[("csrf", csrf.as_str()), ("tenant", "acme"), ("require", "on")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let page = root_client.get(app.url("/admin/tenants")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("two-factor required"), "{page}");
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.require_totp'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 1);
        let res = client.get(app.url("/admin/api-keys")).send().await.expect("page");
        assert_eq!(res.headers()["location"], "/admin/account/totp", "required: set it up first");
        let page = client.get(app.url("/admin/account/totp")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("requires two-factor"));

        let (_, _) = enrol(&app, &client).await;
        let root = browser();
        sign_in(&app, &root, "root@keysmith.test", PASSWORD).await;
        let csrf = csrf_of(&root.get(app.url("/admin/accounts")).send().await.expect("page").text().await.expect("html"));
        let res = root.post(app.url("/admin/accounts/totp-reset")).form(&[("csrf", csrf.as_str()), ("email", ADMIN)]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.count("recovery_codes").await, 0, "recovery codes gone");
        let fresh = browser();
        let res = sign_in(&app, &fresh, ADMIN, PASSWORD).await;
        assert_eq!(res.headers()["location"], "/admin/api-keys", "the password alone again");
        let res = fresh.get(app.url("/admin/api-keys")).send().await.expect("page");
        assert_eq!(res.headers()["location"], "/admin/account/totp", "and, still required, set up anew");
    }

    async fn the_instance_can_require_it_of_every_account(app: TestApp) {
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_REQUIRE_TOTP", "1".to_owned())], None).await;
        account(&app, "root@keysmith.test", true).await;
        let client = browser();
        sign_in(&app, &client, "root@keysmith.test", PASSWORD).await;
        for path in ["/admin/tenants", "/admin/accounts", "/admin/account"] {
            let res = client.get(app.url(path)).send().await.expect("page");
            assert_eq!(res.headers()["location"], "/admin/account/totp", "{path}");
        }
    }
}
