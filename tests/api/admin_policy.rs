//! The tenant's key policy in the admin UI, and the create form following it.

use keysmith::domain::UnixTime;
use keysmith::domain::{people::accounts::Role, tenancy::tenants};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::{TestApp, expect_json},
};

fn policy_form(
    csrf: &str,
    tenant: &str,
    default: &str,
    max: &str,
    overlap: &str,
    prefix: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("tenant", tenant.to_owned()),
        ("default_expiry_days", default.to_owned()),
        ("max_expiry_days", max.to_owned()),
        ("rotation_overlap_days", overlap.to_owned()),
        ("key_prefix", prefix.to_owned()),
    ]
}

async fn policy_of(app: &TestApp, slug: &str) -> serde_json::Value {
    let tenant = tenants::find_by_slug(app.state.pool(), slug)
        .await
        .expect("query")
        .expect("tenant");
    tenants::policy(&tenant)
}

/// The `value`s of the create form's expiry presets, in order.
fn presets(html: &str) -> Vec<String> {
    html.split("name=\"expires_in_days\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().expect("value").to_owned())
        .collect()
}

both_engines! {
    async fn an_admin_changes_the_policy_and_the_create_form_follows(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let keys = client.get(app.url("/admin/api-keys?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert_eq!(presets(&keys), ["30", "90", "180", "365"], "the default maximum is a year");

        let page = client.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = csrf_of(&page.text().await.expect("html"));
        let res = client.post(app.url("/admin/policy")).form(&policy_form(&csrf, "acme", "60", "120", "3", "acme")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let saved = client.get(app.url(res.headers()["location"].to_str().expect("location"))).send().await.expect("page").text().await.expect("html");
        assert!(saved.contains("Key policy saved"), "{saved}");
        assert_eq!(policy_of(&app, "acme").await, json!({"key_prefix": "acme", "default_expiry_days": 60, "max_expiry_days": 120, "rotation_overlap_days": 3, "default_rate_limit": null, "default_quota": null,
            "oauth_access_token_minutes": 10, "oauth_refresh_idle_days": 30, "oauth_refresh_absolute_days": 90, "oauth_registration_open": true, "oauth_metadata_documents": true}));
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.policy'").fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 1);

        // Only presets within the maximum, the maximum itself, and the date picker capped.
        let keys = client.get(app.url("/admin/api-keys?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert_eq!(presets(&keys), ["30", "90", "120"]);
        assert!(keys.contains("value=\"30\" checked"), "the longest preset within the 60-day default is chosen");
        let max_date = UnixTime::from(app.now() + time::Duration::days(120)).date();
        assert!(keys.contains(&format!("max=\"{max_date}\"")), "date picker capped at the maximum");

        // A new key gets the new prefix; the rotate hint states the new overlap.
        let su = app.create_service_user("ci-bot").await;
        let created = app.create_key(&su, json!({})).await;
        assert!(created["key"].as_str().expect("key").starts_with("acme_"), "{created}");
        let detail = client.get(app.url(&format!("/admin/api-keys/{}?tenant=acme", created["id"].as_str().expect("id")))).send().await.expect("page").text().await.expect("html");
        assert!(detail.contains("for up to 3 days"), "{detail}");
    }

    async fn the_oauth_lifetimes_are_set_on_the_policy_page_in_its_words(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("name=\"oauth_access_token_minutes\"") && page.contains("value=\"10\""), "{page}");
        let csrf = csrf_of(&page);
        let mut form = policy_form(&csrf, "acme", "30", "365", "7", "ks");
        form.push(("oauth_access_token_minutes", "4".into()));
        let res = client.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.expect("html").contains("“Access-token lifetime” must be between 5 and 1440"));
        form.pop();
        form.extend([("oauth_access_token_minutes", "15".into()), ("oauth_refresh_idle_days", "7".into()), ("oauth_refresh_absolute_days", "14".into())]);
        let res = client.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let policy = policy_of(&app, "acme").await;
        assert_eq!((policy["oauth_access_token_minutes"].as_i64(), policy["oauth_refresh_idle_days"].as_i64(), policy["oauth_refresh_absolute_days"].as_i64()), (Some(15), Some(7), Some(14)));
    }

    async fn dynamic_registration_is_switched_in_the_policy_by_managers_only(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let metadata = json!({"redirect_uris": ["https://e.example/cb"], "token_endpoint_auth_method": "none"});
        let viewer = browser();
        sign_in(&app, &viewer, "viewer@acme.test", PASSWORD).await;
        let html = viewer.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(html.contains("OAuth dynamic registration</dt><dd>open"), "{html}");
        let mut form = policy_form(&csrf_of(&html), "acme", "90", "365", "7", "ks");
        form.push(("oauth_registration", "closed".into()));
        let res = viewer.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "a viewer cannot close it");
        assert_eq!(policy_of(&app, "acme").await["oauth_registration_open"], true);

        let admin = browser();
        sign_in(&app, &admin, "admin@acme.test", PASSWORD).await;
        let html = admin.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(html.contains("<option value=\"open\" selected>"), "{html}");
        let mut form = policy_form(&csrf_of(&html), "acme", "90", "365", "7", "ks");
        form.push(("oauth_registration", "ajar".into()));
        let res = admin.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.expect("html").contains("either open or closed"));
        assert_eq!(policy_of(&app, "acme").await["oauth_registration_open"], true, "nothing written");
        form.pop();
        form.push(("oauth_registration", "closed".into()));
        let res = admin.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(policy_of(&app, "acme").await["oauth_registration_open"], false);
        let refused = crate::oauth_register::register(&app, "acme", &metadata).await;
        crate::oauth::expect_oauth_error(refused, StatusCode::FORBIDDEN, "access_denied").await;
        assert_eq!(app.count("oauth_clients").await, 0, "nothing stored");
        let clients = admin.get(app.url("/admin/oauth-clients?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(clients.contains("Closed: only the clients below") && clients.contains("href=\"/admin/policy?tenant=acme\""), "{clients}");
        // A form without the field (an older page) keeps the switch as it is.
        form.pop();
        let res = admin.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(policy_of(&app, "acme").await["oauth_registration_open"], false);
        form.push(("oauth_registration", "open".into()));
        admin.post(app.url("/admin/policy")).form(&form).send().await.expect("post");
        expect_json(crate::oauth_register::register(&app, "acme", &metadata).await, StatusCode::CREATED).await;
    }

    async fn a_refused_policy_says_why_keeps_the_input_and_writes_nothing(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let csrf = csrf_of(&client.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page").text().await.expect("html"));
        let before = policy_of(&app, "acme").await;
        let cases = [
            // In the form's words, not the API's field names.
            (("400", "200", "7", "ks"), "“Default expiry” must be between 1 and “Maximum expiry” (200)"),
            (("30", "5000", "7", "ks"), "“Maximum expiry” must be between 1 and 3650"),
            (("30", "90", "31", "ks"), "“Rotation overlap” must be between 1 and 30"),
            (("30", "90", "0", "ks"), "“Rotation overlap” must be between 1 and 30"),
            (("thirty", "90", "7", "ks"), "default expiry must be a whole number of days"),
            (("30", "90", "7", "Not_A_Prefix"), "a key prefix is 2 to 16 lower-case letters or digits"),
        ];
        for ((default, max, overlap, prefix), reason) in cases {
            let res = client.post(app.url("/admin/policy")).form(&policy_form(&csrf, "acme", default, max, overlap, prefix)).send().await.expect("post");
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{reason}");
            let html = res.text().await.expect("html");
            assert!(html.contains(reason), "{reason}: {html}");
            assert!(!html.contains("_days must") && !html.contains("and max_expiry_days"), "an API field name shown: {html}");
            for typed in [default, max, overlap, prefix] {
                assert!(html.contains(&format!("value=\"{typed}\"")), "keeps {typed}");
            }
        }
        assert_eq!(policy_of(&app, "acme").await, before, "nothing written");
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.policy'").fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 0);
    }

    async fn viewers_read_the_policy_and_other_tenants_are_404(app: TestApp) {
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        app.create_tenant("globex").await;
        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/policy?tenant=acme")).send().await.expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        assert!(html.contains("Maximum expiry") && !html.contains("Save policy"), "read-only for a viewer");
        let csrf = csrf_of(&html);
        let before = policy_of(&app, "acme").await;
        let res = client.post(app.url("/admin/policy")).form(&policy_form(&csrf, "acme", "30", "60", "2", "ks")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(policy_of(&app, "acme").await, before);

        assert_eq!(client.get(app.url("/admin/policy?tenant=globex")).send().await.expect("page").status(), StatusCode::NOT_FOUND);
        let globex = policy_of(&app, "globex").await;
        let res = client.post(app.url("/admin/policy")).form(&policy_form(&csrf, "globex", "30", "60", "2", "ks")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "another tenant is 404, never 403");
        assert_eq!(policy_of(&app, "globex").await, globex);

        let res = client.post(app.url("/admin/policy")).form(&policy_form("forged", "acme", "30", "60", "2", "ks")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token, no change");
        let res = client.post(app.url("/admin/policy")).header("sec-fetch-site", "cross-site").form(&policy_form(&csrf, "acme", "30", "60", "2", "ks")).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "cross-site refused");
    }
}
