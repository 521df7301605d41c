//! A service user's lifecycle in the admin UI: edit, disable, enable.

use keysmith::domain::{service_users, users::Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::TestApp,
};

fn edit(
    csrf: &str,
    tenant: &str,
    name: &str,
    owner: &str,
    description: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("tenant", tenant.to_owned()),
        ("name", name.to_owned()),
        ("owner_email", owner.to_owned()),
        ("description", description.to_owned()),
    ]
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

both_engines! {
    async fn an_admin_edits_disables_and_enables_a_service_user(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await["key"].as_str().expect("key").to_owned();
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let list = client.get(app.url("/admin/service-users?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(list.contains(&format!("/admin/service-users/{su}?tenant=acme")), "the list links to the service user");
        let page = client.get(app.url(&format!("/admin/service-users/{su}?tenant=acme"))).send().await.expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = csrf_of(&page.text().await.expect("html"));

        let res = client.post(app.url(&format!("/admin/service-users/{su}"))).form(&edit(&csrf, "acme", "deploy-bot", "platform@acme.test", "Deploys")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let user = service_users::get(app.state.pool(), &app.tenant.id, &keysmith::domain::ServiceUserId::new(su.as_str())).await.expect("user");
        assert_eq!((user.name.as_str(), user.owner_email.as_deref(), user.description.as_deref()), ("deploy-bot", Some("platform@acme.test"), Some("Deploys")));
        assert_eq!(audited(&app, "service_user.update").await, 1);

        // Disabling needs the confirmation box.
        let disable = [("csrf", csrf.clone()), ("tenant", "acme".to_owned())];
        let res = client.post(app.url(&format!("/admin/service-users/{su}/disable"))).form(&disable).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.expect("html").contains("tick the confirmation box"));
        assert_eq!(app.verify_code(&key).await, "valid", "nothing changed");

        let confirmed = [("csrf", csrf.clone()), ("tenant", "acme".to_owned()), ("confirm", "yes".to_owned())];
        let res = client.post(app.url(&format!("/admin/service-users/{su}/disable"))).form(&confirmed).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.verify_code(&key).await, "disabled", "every key refused at once");
        let page = client.get(app.url(&format!("/admin/service-users/{su}?tenant=acme"))).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("badge disabled") && page.contains("Disabled since"), "clearly marked");
        let list = client.get(app.url("/admin/service-users?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(list.contains("badge disabled"), "marked in the list too");
        assert_eq!(audited(&app, "service_user.disable").await, 1);

        let res = client.post(app.url(&format!("/admin/service-users/{su}/enable"))).form(&disable).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.verify_code(&key).await, "valid", "works again");
        assert_eq!(audited(&app, "service_user.enable").await, 1);
    }

    async fn a_refused_edit_says_why_keeps_the_input_and_writes_nothing(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        app.create_service_user("taken").await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let csrf = csrf_of(&client.get(app.url(&format!("/admin/service-users/{su}?tenant=acme"))).send().await.expect("page").text().await.expect("html"));
        let before = service_users::get(app.state.pool(), &app.tenant.id, &keysmith::domain::ServiceUserId::new(su.as_str())).await.expect("user");
        let cases = [
            (("renamed", "", "typed text"), StatusCode::UNPROCESSABLE_ENTITY, "owner email is required"),
            (("renamed", "not-an-email", "typed text"), StatusCode::UNPROCESSABLE_ENTITY, "the owner email must be an email address"),
            (("", "x@acme.test", "typed text"), StatusCode::UNPROCESSABLE_ENTITY, "name"),
            (("taken", "x@acme.test", "typed text"), StatusCode::CONFLICT, "a service user named `taken` already exists"),
            (("keysmith-management", "x@acme.test", "typed text"), StatusCode::UNPROCESSABLE_ENTITY, "keeps its name, and no other service user takes it"),
        ];
        for ((name, owner, description), status, reason) in cases {
            let res = client.post(app.url(&format!("/admin/service-users/{su}"))).form(&edit(&csrf, "acme", name, owner, description)).send().await.expect("post");
            assert_eq!(res.status(), status, "{reason}");
            let html = res.text().await.expect("html");
            assert!(html.contains(reason), "{reason}: {html}");
            assert!(html.contains("value=\"typed text\"") && html.contains(&format!("value=\"{owner}\"")), "keeps what was typed");
        }
        let after = service_users::get(app.state.pool(), &app.tenant.id, &keysmith::domain::ServiceUserId::new(su.as_str())).await.expect("user");
        assert_eq!(format!("{after:?}"), format!("{before:?}"), "nothing written");
        assert_eq!(audited(&app, "service_user.update").await, 0);
    }

    async fn viewers_get_403_and_other_tenants_404(app: TestApp) {
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await["key"].as_str().expect("key").to_owned();
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let gsu: serde_json::Value = app.post_as(&globex_admin, "/api/v1/tenants/globex/service-users", &json!({"name": "g", "owner_email": "g@globex.test"})).await.json().await.expect("json");
        let gsu = gsu["id"].as_str().expect("id").to_owned();

        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let page = client.get(app.url(&format!("/admin/service-users/{su}?tenant=acme"))).send().await.expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        assert!(!html.contains("/disable") && !html.contains("su-owner"), "no edit or disable for a viewer");
        let csrf = csrf_of(&html);
        let confirmed = [("csrf", csrf.clone()), ("tenant", "acme".to_owned()), ("confirm", "yes".to_owned())];
        for action in ["/disable", "/enable"] {
            let res = client.post(app.url(&format!("/admin/service-users/{su}{action}"))).form(&confirmed).send().await.expect("post");
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{action}");
        }
        let res = client.post(app.url(&format!("/admin/service-users/{su}"))).form(&edit(&csrf, "acme", "x", "x@acme.test", "")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.verify_code(&key).await, "valid");

        // Another tenant's service user: 404 whichever tenant the form names.
        assert_eq!(client.get(app.url(&format!("/admin/service-users/{gsu}?tenant=acme"))).send().await.expect("page").status(), StatusCode::NOT_FOUND);
        assert_eq!(client.get(app.url(&format!("/admin/service-users/{gsu}?tenant=globex"))).send().await.expect("page").status(), StatusCode::NOT_FOUND);
        let globex_form = [("csrf", csrf.clone()), ("tenant", "globex".to_owned()), ("confirm", "yes".to_owned())];
        let res = client.post(app.url(&format!("/admin/service-users/{gsu}/disable"))).form(&globex_form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let disabled = service_users::get(app.state.pool(), &globex.id, &keysmith::domain::ServiceUserId::new(gsu.as_str())).await.expect("user").disabled_at;
        assert!(disabled.is_none(), "nothing written");

        // Cross-site or without the token: refused before anything else.
        let res = client.post(app.url(&format!("/admin/service-users/{su}/disable"))).header("sec-fetch-site", "cross-site").form(&confirmed).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }

    async fn an_admin_of_another_tenant_cannot_touch_acme_service_users(app: TestApp) {
        let globex = app.create_tenant("globex").await;
        let user = crate::admin::account(&app, "g@globex.test", false).await;
        keysmith::domain::users::grant(app.state.pool(), &globex.id, &user.id, Role::Admin, app.now()).await.expect("grant");
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await["key"].as_str().expect("key").to_owned();
        let client = browser();
        sign_in(&app, &client, "g@globex.test", PASSWORD).await;
        let csrf = csrf_of(&client.get(app.url("/admin/service-users?tenant=globex")).send().await.expect("page").text().await.expect("html"));
        for tenant in ["globex", "acme"] {
            let form = [("csrf", csrf.clone()), ("tenant", tenant.to_owned()), ("confirm", "yes".to_owned())];
            let res = client.post(app.url(&format!("/admin/service-users/{su}/disable"))).form(&form).send().await.expect("post");
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "as {tenant}");
            let res = client.post(app.url(&format!("/admin/service-users/{su}"))).form(&edit(&csrf, tenant, "mine", "g@globex.test", "")).send().await.expect("post");
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "as {tenant}");
        }
        assert_eq!(app.verify_code(&key).await, "valid");
        assert_eq!(service_users::get(app.state.pool(), &app.tenant.id, &keysmith::domain::ServiceUserId::new(su.as_str())).await.expect("user").name, "ci-bot");
    }
}
