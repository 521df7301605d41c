//! Account lifecycle in the UI: superadmins disable and enable accounts,
//! reset passwords and change or remove roles; every admin changes their own
//! password and signs out everywhere.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, account, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::TestApp,
};

const ROOT: &str = "root@keysmith.test";
const ADMIN: &str = "admin@acme.test";
const TEMPORARY: &str = "temporary password 1";
const NEW: &str = "a brand new password";

async fn signed_in(app: &TestApp, email: &str, password: &str) -> reqwest::Client {
    let client = browser();
    assert_eq!(
        sign_in(app, &client, email, password).await.status(),
        StatusCode::SEE_OTHER,
        "{email} signs in"
    );
    client
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let res = client.get(app.url(path)).send().await.expect("page");
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = res.text().await.expect("html");
    (
        status,
        if status == StatusCode::SEE_OTHER {
            location
        } else {
            body
        },
    )
}

async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let res = client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("post");
    let status = res.status();
    (status, res.text().await.expect("body"))
}

async fn csrf(app: &TestApp, client: &reqwest::Client) -> String {
    csrf_of(&get(app, client, "/admin/account").await.1)
}

both_engines! {
    async fn a_superadmin_disables_and_enables_an_account(app: TestApp) {
        account(&app, ROOT, true).await;
        admin_user(&app, ADMIN, Role::Admin).await;
        let (root, admin) = (signed_in(&app, ROOT, PASSWORD).await, signed_in(&app, ADMIN, PASSWORD).await);
        let (status, page) = get(&app, &root, "/admin/accounts").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(ADMIN) && page.contains("Disable"), "{page}");
        let token = csrf_of(&page);

        // Refused actions change nothing.
        let events = app.count("account_events").await;
        let (status, body) = post(&app, &root, "/admin/accounts/status", &[("csrf", &token), ("email", ROOT), ("action", "disable")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("your own account"), "{body}");
        let (status, _) = post(&app, &root, "/admin/accounts/status", &[("csrf", &token), ("email", "nobody@acme.test"), ("action", "disable")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let admin_csrf = csrf(&app, &admin).await;
        let (status, _) = post(&app, &admin, "/admin/accounts/status", &[("csrf", &admin_csrf), ("email", ROOT), ("action", "disable")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "only superadmins");
        assert_eq!(get(&app, &admin, "/admin/accounts").await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.count("account_events").await, events);

        let (status, _) = post(&app, &root, "/admin/accounts/status", &[("csrf", &token), ("email", ADMIN), ("action", "disable")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &admin, "/admin/api-keys").await, (StatusCode::SEE_OTHER, "/admin/sign-in".to_owned()), "its open session ended");
        assert_eq!(sign_in(&app, &browser(), ADMIN, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        assert!(get(&app, &root, "/admin/accounts").await.1.contains("disabled"));
        post(&app, &root, "/admin/accounts/status", &[("csrf", &token), ("email", ADMIN), ("action", "enable")]).await;
        signed_in(&app, ADMIN, PASSWORD).await;
        assert_eq!(app.count("account_events").await, events + 2, "audited");
    }

    async fn a_reset_password_must_be_replaced_at_the_next_sign_in(app: TestApp) {
        account(&app, ROOT, true).await;
        admin_user(&app, ADMIN, Role::Admin).await;
        let (root, old_session) = (signed_in(&app, ROOT, PASSWORD).await, signed_in(&app, ADMIN, PASSWORD).await);
        let token = csrf_of(&get(&app, &root, "/admin/accounts").await.1);
        let (status, body) = post(&app, &root, "/admin/accounts/password", &[("csrf", &token), ("email", ADMIN), ("password", "short")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("at least 12 characters") && !body.contains("short\""), "{body}");
        assert_eq!(get(&app, &old_session, "/admin/api-keys").await.0, StatusCode::OK, "a refused reset changes nothing");

        let (status, _) = post(&app, &root, "/admin/accounts/password", &[("csrf", &token), ("email", ADMIN), ("password", TEMPORARY)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &old_session, "/admin/api-keys").await.0, StatusCode::SEE_OTHER, "sessions ended");
        assert_eq!(sign_in(&app, &browser(), ADMIN, PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "the old password is gone");
        assert!(!app.db.dump().contains(TEMPORARY), "only a hash stored");

        let admin = signed_in(&app, ADMIN, TEMPORARY).await;
        assert_eq!(get(&app, &admin, "/admin/api-keys").await, (StatusCode::SEE_OTHER, "/admin/account".to_owned()), "nothing else until it is changed");
        let (status, page) = get(&app, &admin, "/admin/account").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("reset by an administrator"));
        let token = csrf_of(&page);
        let (status, _) = post(&app, &admin, "/admin/account/password", &[("csrf", &token), ("current", TEMPORARY), ("new", TEMPORARY), ("confirm", TEMPORARY)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the temporary password cannot stay");
        let (status, _) = post(&app, &admin, "/admin/account/password", &[("csrf", &token), ("current", TEMPORARY), ("new", NEW), ("confirm", NEW)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &admin, "/admin/api-keys").await.0, StatusCode::OK, "this session goes on");
        signed_in(&app, ADMIN, NEW).await;
    }

    async fn a_superadmin_lowers_or_removes_a_role_and_the_session_ends(app: TestApp) {
        account(&app, ROOT, true).await;
        admin_user(&app, ADMIN, Role::Admin).await;
        let (root, admin) = (signed_in(&app, ROOT, PASSWORD).await, signed_in(&app, ADMIN, PASSWORD).await);
        let token = csrf_of(&get(&app, &root, "/admin/accounts").await.1);
        let (status, _) = post(&app, &root, "/admin/accounts/role", &[("csrf", &token), ("email", ADMIN), ("tenant", "acme"), ("role", "emperor")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(get(&app, &admin, "/admin/api-keys").await.0, StatusCode::OK);

        let (status, _) = post(&app, &root, "/admin/accounts/role", &[("csrf", &token), ("email", ADMIN), ("tenant", "acme"), ("role", "viewer")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &admin, "/admin/api-keys").await.0, StatusCode::SEE_OTHER, "lowered: signed out");
        let admin = signed_in(&app, ADMIN, PASSWORD).await;
        let (_, page) = get(&app, &admin, "/admin/api-keys").await;
        assert!(!page.contains("Create a key"), "a viewer now");

        let (status, _) = post(&app, &root, "/admin/accounts/role", &[("csrf", &token), ("email", ADMIN), ("tenant", "acme"), ("role", "none")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &admin, "/admin/api-keys").await.0, StatusCode::SEE_OTHER, "removed: signed out");
        assert_eq!(app.count("memberships").await, 0);
        let revokes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'admin.revoke'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(revokes, 1, "audited");
        let (status, _) = post(&app, &root, "/admin/accounts/role", &[("csrf", &token), ("email", ADMIN), ("tenant", "acme"), ("role", "none")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "no role left to remove");
    }

    async fn an_admin_changes_their_password_and_signs_out_everywhere(app: TestApp) {
        admin_user(&app, ADMIN, Role::Admin).await;
        let (laptop, phone) = (signed_in(&app, ADMIN, PASSWORD).await, signed_in(&app, ADMIN, PASSWORD).await);
        let token = csrf(&app, &laptop).await;
        for (current, new, confirm, message) in [
            ("wrong password!", NEW, NEW, "not right"),
            (PASSWORD, NEW, "something else entirely", "differ"),
            (PASSWORD, "short", "short", "at least 12 characters"),
        ] {
            let (status, body) = post(&app, &laptop, "/admin/account/password", &[("csrf", &token), ("current", current), ("new", new), ("confirm", confirm)]).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
            assert!(body.contains(message) && !body.contains(new), "{message}: {body}");
        }
        assert_eq!(get(&app, &phone, "/admin/api-keys").await.0, StatusCode::OK, "refusals change nothing");
        let (status, _) = post(&app, &laptop, "/admin/account/password", &[("csrf", &token), ("current", PASSWORD), ("new", NEW), ("confirm", NEW)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &phone, "/admin/api-keys").await.0, StatusCode::SEE_OTHER, "the other session ended");
        assert_eq!(get(&app, &laptop, "/admin/api-keys").await.0, StatusCode::OK, "this one goes on");

        let phone = signed_in(&app, ADMIN, NEW).await;
        let token = csrf(&app, &laptop).await;
        let (status, _) = post(&app, &laptop, "/admin/account/sign-out-everywhere", &[("csrf", &token)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &laptop, "/admin/api-keys").await.0, StatusCode::SEE_OTHER);
        assert_eq!(get(&app, &phone, "/admin/api-keys").await.0, StatusCode::SEE_OTHER);
        let events: Vec<(String,)> = sqlx::query_as("SELECT action FROM account_events ORDER BY id").fetch_all(app.state.pool()).await.expect("events");
        assert_eq!(events, vec![("account.password_change".to_owned(),), ("account.sign_out_everywhere".to_owned(),)]);
    }
}
