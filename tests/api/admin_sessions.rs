//! Sessions follow the account: a change to the account in the database
//! reaches its open sessions on their next request.

use keysmith::domain::{
    Actor,
    people::accounts::{self, Role},
    people::lifecycle,
};
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, account, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::TestApp,
};

async fn signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    let client = browser();
    assert_eq!(
        sign_in(app, &client, email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    client
}

async fn status(app: &TestApp, client: &reqwest::Client, path: &str) -> StatusCode {
    client
        .get(app.url(path))
        .send()
        .await
        .expect("page")
        .status()
}

async fn sql(app: &TestApp, statement: &str, email: &str) {
    sqlx::query(statement)
        .bind(email)
        .execute(app.state.pool())
        .await
        .expect("update");
}

both_engines! {
    async fn a_superadmin_demoted_in_the_database_loses_the_tenants_page_at_once(app: TestApp) {
        account(&app, "root@acme.test", true).await;
        let client = signed_in(&app, "root@acme.test").await;
        let page = client.get(app.url("/admin/tenants")).send().await.expect("page").text().await.expect("html");
        let csrf = csrf_of(&page);
        sql(&app, "UPDATE admin_users SET is_superadmin = 0 WHERE email = $1", "root@acme.test").await;
        assert_eq!(status(&app, &client, "/admin/tenants").await, StatusCode::FORBIDDEN);
        let before = app.count("tenants").await;
        let res = client.post(app.url("/admin/tenants")).form(&[("csrf", csrf.as_str()), ("slug", "sneaky"), ("name", "Sneaky")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.count("tenants").await, before, "no tenant created");
    }

    async fn an_account_disabled_in_the_database_is_signed_out_on_its_next_request(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = signed_in(&app, "admin@acme.test").await;
        assert_eq!(status(&app, &client, "/admin/api-keys").await, StatusCode::OK);
        sql(&app, "UPDATE admin_users SET disabled_at = 1 WHERE email = $1", "admin@acme.test").await;
        assert_eq!(status(&app, &client, "/admin/api-keys").await, StatusCode::SEE_OTHER);
        sql(&app, "UPDATE admin_users SET disabled_at = NULL WHERE email = $1", "admin@acme.test").await;
        assert_eq!(status(&app, &client, "/admin/api-keys").await, StatusCode::SEE_OTHER, "that session was ended, not paused");
    }

    async fn disabling_changing_a_role_or_signing_out_everywhere_ends_open_sessions(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let (laptop, phone) = (signed_in(&app, "admin@acme.test").await, signed_in(&app, "admin@acme.test").await);
        let user = accounts::find_by_email(app.state.pool(), "admin@acme.test").await.expect("query").expect("account");

        // A role change (admin → viewer) ends both sessions.
        accounts::grant(app.state.pool(), &app.tenant.id, &user.id, Role::Viewer, app.now()).await.expect("grant");
        assert_eq!(status(&app, &laptop, "/admin/api-keys").await, StatusCode::SEE_OTHER);
        assert_eq!(status(&app, &phone, "/admin/api-keys").await, StatusCode::SEE_OTHER);

        // Granting the same role again is no change: sessions stay.
        let laptop = signed_in(&app, "admin@acme.test").await;
        accounts::grant(app.state.pool(), &app.tenant.id, &user.id, Role::Viewer, app.now()).await.expect("grant");
        assert_eq!(status(&app, &laptop, "/admin/api-keys").await, StatusCode::OK);

        lifecycle::end_sessions(app.state.pool(), &user.id, &Actor::Cli, app.now()).await.expect("end");
        assert_eq!(status(&app, &laptop, "/admin/api-keys").await, StatusCode::SEE_OTHER);

        let laptop = signed_in(&app, "admin@acme.test").await;
        lifecycle::set_disabled(app.state.pool(), "admin@acme.test", true, &Actor::Cli, app.now()).await.expect("disable");
        assert_eq!(status(&app, &laptop, "/admin/api-keys").await, StatusCode::SEE_OTHER);
        assert_eq!(sign_in(&app, &browser(), "admin@acme.test", PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "a disabled account cannot sign in");
        lifecycle::set_disabled(app.state.pool(), "admin@acme.test", false, &Actor::Cli, app.now()).await.expect("enable");
        assert_eq!(status(&app, &laptop, "/admin/api-keys").await, StatusCode::SEE_OTHER, "enabling does not revive old sessions");
        signed_in(&app, "admin@acme.test").await;
        assert_eq!(app.count("account_events").await, 3, "sign-out everywhere, disable, enable: audited");
        let err = lifecycle::set_disabled(app.state.pool(), "nobody@acme.test", true, &Actor::Cli, app.now()).await.expect_err("unknown");
        assert!(err.to_string().contains("not found") || err.to_string().contains("account"), "{err}");
    }
}
