//! Limits in the admin UI: set in the key create form, edited on the key page.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
    helpers::{TestApp, expect_json},
};

fn limits(rate: &str, tools: &str, calls: &str, per: &str) -> Vec<(&'static str, String)> {
    vec![
        ("rate_per_minute", rate.to_owned()),
        ("tool_rates", tools.to_owned()),
        ("quota_calls", calls.to_owned()),
        ("quota_per", per.to_owned()),
    ]
}

/// The key create form of `page` for `service_user`, with `extra` fields.
fn create_form(
    page: &str,
    service_user: &str,
    extra: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("csrf", csrf_of(page)),
        ("form_token", field(page, "form_token")),
        ("tenant", "acme".to_owned()),
        ("service_user_id", service_user.to_owned()),
        ("name", "ui-key".to_owned()),
        ("expires_in_days", "30".to_owned()),
    ];
    form.extend(extra);
    form
}

async fn key_json(app: &TestApp, id: &str) -> Value {
    expect_json(
        app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await,
        StatusCode::OK,
    )
    .await
}

both_engines! {
    async fn admin_sets_limits_on_create_and_edits_them_on_the_key_page(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
        let form = create_form(&page, &su, limits("600", "search* = 60", "10000", "month"));
        let res = client.post(app.url("/admin/api-keys")).form(&form).send().await.expect("create");
        assert_eq!(res.status(), StatusCode::OK);
        let keys = expect_json(app.get("/api/v1/tenants/acme/keys").await, StatusCode::OK).await;
        let id = keys["items"].as_array().expect("items").iter().find(|k| k["name"] == "ui-key").expect("created")["id"].as_str().expect("id").to_owned();
        let created = key_json(&app, &id).await;
        assert_eq!(created["rate_limit"], json!({"per_minute": 600, "tools": [{"tool": "search*", "per_minute": 60}]}));
        assert_eq!(created["quota"], json!({"calls": 10000, "per": "month"}));

        // The key page shows them in its edit form.
        let path = format!("/admin/api-keys/{id}?tenant=acme");
        let page = client.get(app.url(&path)).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("search* = 60"), "{page}");
        let edit = |fields: Vec<(&'static str, String)>| {
            let mut body = vec![("csrf", csrf_of(&page)), ("tenant", "acme".to_owned())];
            body.extend(fields);
            client.post(app.url(&format!("/admin/api-keys/{id}/limits"))).form(&body).send()
        };
        // Refused: the page again with the reason and what was typed, nothing written.
        let refused = edit(limits("60", "search*", "5", "day")).await.expect("post");
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = refused.text().await.expect("html");
        assert!(html.contains("looks like"), "the reason: {html}");
        assert!(html.contains(">search*</textarea>"), "what was typed: {html}");
        assert_eq!(key_json(&app, &id).await["rate_limit"], created["rate_limit"]);
        let res = edit(limits("", "", "5", "day")).await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let edited = key_json(&app, &id).await;
        assert_eq!((&edited["rate_limit"], &edited["quota"]), (&Value::Null, &json!({"calls": 5, "per": "day"})));
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'key.limits' AND key_id = $1")
            .bind(&id).fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 1);

        // Through a tenant this admin has no role in, nothing changes.
        app.create_tenant("globex").await;
        let mut body = vec![("csrf", csrf_of(&page)), ("tenant", "globex".to_owned())];
        body.extend(limits("1", "", "", "day"));
        let res = client.post(app.url(&format!("/admin/api-keys/{id}/limits"))).form(&body).send().await.expect("post");
        assert_ne!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(key_json(&app, &id).await["quota"], json!({"calls": 5, "per": "day"}));
    }

    async fn a_create_form_with_bad_limits_creates_nothing(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let before = app.count("api_keys").await;
        for bad in [limits("0", "", "", "day"), limits("", "x y = 3", "", "day"), limits("", "", "10", "week")] {
            let page = client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
            let form = create_form(&page, &su, bad);
            let res = client.post(app.url("/admin/api-keys")).form(&form).send().await.expect("create");
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(app.count("api_keys").await, before);
    }
}

both_engines! {
    async fn admin_sets_tenant_default_limits_on_the_policy_page(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page").text().await.expect("html");
        let policy = |extra: Vec<(&'static str, String)>| {
            let mut body = vec![
                ("csrf", csrf_of(&page)), ("tenant", "acme".to_owned()), ("default_expiry_days", "90".to_owned()),
                ("max_expiry_days", "365".to_owned()), ("rotation_overlap_days", "7".to_owned()), ("key_prefix", "ks".to_owned()),
            ];
            body.extend(extra);
            client.post(app.url("/admin/policy")).form(&body).send()
        };
        let refused = policy(limits("", "", "0", "day")).await.expect("post");
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await["default_quota"], Value::Null);
        let saved = policy(limits("", "", "500", "day")).await.expect("post");
        assert_eq!(saved.status(), StatusCode::SEE_OTHER);
        assert_eq!(expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await["default_quota"], json!({"calls": 500, "per": "day"}));
        let shown = client.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(shown.contains("value=\"500\""), "{shown}");
    }
}
