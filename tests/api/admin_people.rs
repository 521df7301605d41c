//! The service users page and the superadmin's tenants page, over HTTP.

use keysmith::domain::{
    Email,
    people::accounts::{self, Role},
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    admin::{PASSWORD, account, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::expect_json,
};

async fn html(client: &reqwest::Client, url: String) -> (StatusCode, String) {
    let res = client.get(url).send().await.expect("page");
    (res.status(), res.text().await.expect("html"))
}

both_engines! {
    async fn service_users_are_listed_with_their_keys_and_created_from_the_page(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        app.create_key(&su, json!({"name": "deploy"})).await;
        let old = app.create_key(&su, json!({"name": "nightly"})).await;
        app.rotate_key(old["id"].as_str().expect("id")).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;

        let (status, page) = html(&client, app.url("/admin/service-users")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("ci-bot") && page.contains("deploy"), "{page}");
        assert!(page.contains("badge rotating"), "the rotated key still works and says so");
        assert!(page.contains("3 keys"), "two created and one from the rotation: {page}");

        let csrf = csrf_of(&page);
        let form = |name: &str, email: &str| {
            vec![("csrf", csrf.clone()), ("tenant", "acme".to_owned()), ("name", name.to_owned()), ("owner_email", email.to_owned()), ("description", String::new())]
        };
        let before = app.count("service_users").await;
        for (name, email, status, message) in [
            ("", "ops@acme.test", StatusCode::UNPROCESSABLE_ENTITY, "name must not be empty"),
            ("billing", "", StatusCode::UNPROCESSABLE_ENTITY, "owner email is required"),
            ("billing", "not-an-email", StatusCode::UNPROCESSABLE_ENTITY, "email address"),
            ("ci-bot", "ops@acme.test", StatusCode::CONFLICT, "already exists"),
        ] {
            let res = client.post(app.url("/admin/service-users")).form(&form(name, email)).send().await.expect("post");
            assert_eq!(res.status(), status, "{name:?} {email:?}");
            let body = res.text().await.expect("html");
            assert!(body.contains(message), "{message}: {body}");
            assert!(body.contains(&format!("value=\"{email}\"")), "what was typed is kept");
        }
        assert_eq!(app.count("service_users").await, before, "refused forms write nothing");

        let res = client.post(app.url("/admin/service-users")).form(&form("billing", "Ops@Acme.test")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "post/redirect/get");
        let (_, page) = html(&client, app.url("/admin/service-users")).await;
        assert!(page.contains("billing") && page.contains("ops@acme.test"));
        assert_eq!(app.count("service_users").await, before + 1);
    }

    async fn viewers_cannot_add_service_users_and_other_tenants_are_404(app: TestApp) {
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        expect_json(app.post_as(&globex_admin, "/api/v1/tenants/globex/service-users", &json!({"name": "globex-secret-bot", "owner_email": "g@globex.test"})).await, StatusCode::CREATED).await;
        let before = app.count("service_users").await;
        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;

        let (status, page) = html(&client, app.url("/admin/service-users")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("Add service user"), "no form for a viewer");
        assert!(!page.contains("globex-secret-bot"));
        let csrf = csrf_of(&page);
        let form = [("csrf", csrf.as_str()), ("tenant", "acme"), ("name", "sneaky"), ("owner_email", "a@acme.test")];
        let res = client.post(app.url("/admin/service-users")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        let (status, page) = html(&client, app.url("/admin/service-users?tenant=globex")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant is 404");
        assert!(!page.contains("globex-secret-bot"));
        let form = [("csrf", csrf.as_str()), ("tenant", "globex"), ("name", "sneaky"), ("owner_email", "a@acme.test")];
        let res = client.post(app.url("/admin/service-users")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let no_csrf = [("tenant", "acme"), ("name", "sneaky"), ("owner_email", "a@acme.test")];
        let res = client.post(app.url("/admin/service-users")).form(&no_csrf).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token, no change");
        assert_eq!(app.count("service_users").await, before, "no refused form wrote anything");
    }

    async fn a_superadmin_creates_tenants_and_adds_admins_with_roles(app: TestApp) {
        account(&app, "root@keysmith.test", true).await;
        let client = browser();
        sign_in(&app, &client, "root@keysmith.test", PASSWORD).await;
        let (status, page) = html(&client, app.url("/admin/tenants")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Create a tenant") && page.contains("acme"));
        let csrf = csrf_of(&page);

        let tenant = |slug: &str, name: &str, prefix: &str| {
            vec![("csrf", csrf.clone()), ("slug", slug.to_owned()), ("name", name.to_owned()), ("key_prefix", prefix.to_owned())]
        };
        let before = app.count("tenants").await;
        for (slug, name, prefix, status, message) in [
            ("Bad Slug", "Globex", "", StatusCode::UNPROCESSABLE_ENTITY, "tenant slug"),
            ("globex", "", "", StatusCode::UNPROCESSABLE_ENTITY, "name must not be empty"),
            ("globex", "Globex", "G!", StatusCode::UNPROCESSABLE_ENTITY, "key prefix"),
            ("acme", "Acme again", "", StatusCode::CONFLICT, "already exists"),
        ] {
            let res = client.post(app.url("/admin/tenants")).form(&tenant(slug, name, prefix)).send().await.expect("post");
            assert_eq!(res.status(), status, "{slug:?}");
            assert!(res.text().await.expect("html").contains(message), "{message}");
        }
        assert_eq!(app.count("tenants").await, before, "refused: nothing written");
        let res = client.post(app.url("/admin/tenants")).form(&tenant("globex", "Globex", "gx")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);

        let add = |email: &str, role: &str, password: &str| {
            vec![("csrf", csrf.clone()), ("tenant", "globex".to_owned()), ("email", email.to_owned()), ("role", role.to_owned()), ("password", password.to_owned())]
        };
        let users_before = app.count("admin_users").await;
        for (email, role, password, status, message) in [
            ("new@globex.test", "viewer", "", StatusCode::UNPROCESSABLE_ENTITY, "has no account yet"),
            ("new@globex.test", "emperor", PASSWORD, StatusCode::UNPROCESSABLE_ENTITY, "choose a role"),
            ("new@globex.test", "viewer", "short", StatusCode::UNPROCESSABLE_ENTITY, "at least 12 characters"),
            ("root@keysmith.test", "viewer", PASSWORD, StatusCode::CONFLICT, "already has an account"),
        ] {
            let res = client.post(app.url("/admin/tenants/admins")).form(&add(email, role, password)).send().await.expect("post");
            assert_eq!(res.status(), status, "{email} {role}");
            let body = res.text().await.expect("html");
            assert!(body.contains(message), "{message}: {body}");
            assert!(!body.contains(PASSWORD), "a typed password is never echoed");
        }
        assert_eq!(app.count("admin_users").await, users_before, "refused: no account created");
        assert_eq!(app.count("memberships").await, 0);

        let res = client.post(app.url("/admin/tenants/admins")).form(&add("new@globex.test", "viewer", PASSWORD)).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let (_, page) = html(&client, app.url("/admin/tenants")).await;
        assert!(page.contains("new@globex.test") && page.contains("badge role\">viewer"), "{page}");

        // The new account signs in and lands in its tenant, as a viewer.
        let viewer = browser();
        sign_in(&app, &viewer, "new@globex.test", PASSWORD).await;
        let (status, page) = html(&viewer, app.url("/admin/api-keys")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Globex") && !page.contains("Create a key"));
        assert!(!page.contains("href=\"/admin/tenants\""), "no tenants link for a tenant admin");
        let (status, _) = html(&viewer, app.url("/admin/tenants")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "only instance administrators");
        let viewer_csrf = csrf_of(&page);
        let res = viewer.post(app.url("/admin/tenants")).form(&[("csrf", viewer_csrf.as_str()), ("slug", "mine"), ("name", "Mine")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // Promoting an existing account needs no password, and is audited.
        let res = client.post(app.url("/admin/tenants/admins")).form(&add("new@globex.test", "admin", "")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let (_, page) = html(&viewer, app.url("/admin/api-keys")).await;
        assert!(page.contains("Create a key"), "an admin now: {page}");
        let grants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'admin.grant'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(grants, 2);
    }
}

both_engines! {
    async fn an_admin_of_two_tenants_switches_and_has_each_tenants_role(app: TestApp) {
        admin_user(&app, "multi@acme.test", Role::Admin).await;
        let globex = app.create_tenant("globex").await;
        let email = Email::parse("multi@acme.test").expect("email");
        accounts::add_to_tenant(app.state.pool(), &globex.id, &email, Role::Viewer, None, &keysmith::domain::Actor::Cli, app.now())
            .await
            .expect("viewer in globex");
        app.create_service_user("ci-bot").await;
        let client = browser();
        sign_in(&app, &client, "multi@acme.test", PASSWORD).await;

        let (_, acme) = html(&client, app.url("/admin/api-keys")).await;
        assert!(acme.contains("<select id=\"tenant\" name=\"tenant\">"), "a switcher: {acme}");
        assert!(acme.contains("Acme (admin)") && acme.contains("globex (viewer)"), "each tenant with its own role");
        assert!(acme.contains("Create a key"), "an admin in acme");
        let (status, globex_page) = html(&client, app.url("/admin/api-keys?tenant=globex")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(globex_page.contains("<h1>API keys <small>globex"), "switched");
        assert!(!globex_page.contains("Create a key"), "a viewer in globex");
        let (_, users_page) = html(&client, app.url("/admin/service-users?tenant=globex")).await;
        assert!(!users_page.contains("Add service user"), "a viewer in globex");
        assert!(!users_page.contains("ci-bot"), "globex's page shows globex's service users only");
    }
}

both_engines! {
    async fn an_admin_without_a_tenant_is_told_whom_to_ask(app: TestApp) {
        account(&app, "new@nowhere.test", false).await;
        let client = browser();
        sign_in(&app, &client, "new@nowhere.test", PASSWORD).await;
        for path in ["/admin/api-keys", "/admin/service-users"] {
            let (status, page) = html(&client, app.url(path)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(page.contains("not an admin of any tenant yet"), "{path}: {page}");
            assert!(!page.contains("Acme"), "nothing of a tenant they do not belong to");
        }
        let (status, _) = html(&client, app.url("/admin/api-keys?tenant=acme")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "asking for a tenant by name is still 404");
    }
}
