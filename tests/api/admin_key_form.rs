//! The key create form when refused: shown again with what was typed, every
//! problem beside its field in the form's words, a fresh form token (the
//! refused one is spent), and nothing saved.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
    helpers::{TestApp, expect_json},
};

/// The `value` of the field whose `name` is `name`, wherever the attribute sits.
fn typed(html: &str, name: &str) -> String {
    let at = html
        .find(&format!(" name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name}"));
    let start = html[..at].rfind('<').expect("tag start");
    let tag = &html[start..start + html[start..].find('>').expect("tag end")];
    let (_, rest) = tag
        .split_once("value=\"")
        .unwrap_or_else(|| panic!("{name} has no value: {tag}"));
    rest.split('"').next().expect("value").to_owned()
}

/// What a refusal must not leave behind: no key, no audit line.
async fn saved(app: &TestApp) -> (i64, i64) {
    (app.count("api_keys").await, app.count("audit_events").await)
}

/// Signs in as an admin of acme and opens the keys page: the signed-in
/// client and the page.
async fn keys_page(app: &TestApp) -> (reqwest::Client, String) {
    admin_user(app, "admin@acme.test", Role::Admin).await;
    let client = browser();
    sign_in(app, &client, "admin@acme.test", PASSWORD).await;
    let page = client
        .get(app.url("/admin/api-keys?tenant=acme"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    (client, page)
}

/// The create form of `page` (its CSRF and form tokens, tenant acme) with `fields`.
fn key_form(page: &str, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let tokens = [
        ("csrf", csrf_of(page)),
        ("form_token", field(page, "form_token")),
        ("tenant", "acme".to_owned()),
    ];
    tokens
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain(
            fields
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        )
        .collect()
}

/// Posts `form`, which must be refused (422) with nothing saved: the page it
/// comes back as.
async fn refused(app: &TestApp, client: &reqwest::Client, form: &[(String, String)]) -> String {
    let before = saved(app).await;
    let res = client
        .post(app.url("/admin/api-keys"))
        .form(form)
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.expect("html");
    assert_eq!(saved(app).await, before, "nothing saved");
    html
}

both_engines! {
    async fn a_refused_key_form_comes_back_whole_with_every_error_and_saves_nothing(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let (client, page) = keys_page(&app).await;
        let first_token = field(&page, "form_token");
        let before_keys = app.count("api_keys").await;
        let bad = key_form(&page, &[
            ("service_user_id", &su),
            ("name", "   "),
            ("expires_in_days", "30"),
            ("expires_on", "2020-01-31"),
            ("allowed_tools", "whoami, bad tool"),
            ("allowed_prompts", "summarize"),
            ("rate_per_minute", "0"),
            ("tool_rates", "search* = 60"),
        ]);
        let html = refused(&app, &client, &bad).await;
        assert!(html.contains("4 fields need a change"), "{html}");
        for (id, words) in [
            ("new-name-error", "The name must not be empty"),
            ("new-expiry-error", "The expiry date must be in the future"),
            ("new-tools-error", "bad tool"),
            ("new-limits-error", "“Tool calls per minute” must be a positive number"),
        ] {
            let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no {id}: {html}"));
            let text = html[at..].split("</p>").next().expect("text");
            assert!(text.contains(words), "{id} says {words}: {text}");
        }
        let said: String = html.split("class=\"field-error\"").skip(1).filter_map(|p| p.split("</p>").next()).collect();
        for api_word in ["expires_", "allowed_", "rate_limit", "per_minute", "limits:"] {
            assert!(!said.contains(api_word), "the API's `{api_word}` in {said}");
        }
        assert!(!html.contains("Unprocessable"), "not the bare error page");
        // What was typed is still there.
        for (name, value) in [("allowed_tools", "whoami, bad tool"), ("allowed_prompts", "summarize"), ("expires_on", "2020-01-31"), ("rate_per_minute", "0")] {
            assert_eq!(typed(&html, name), value, "{name} kept");
        }
        assert!(html.contains("search* = 60</textarea>"), "tool rates kept");
        assert!(html.contains(&format!("<option value=\"{su}\" selected>")), "service user kept");

        // The refused form's token is spent; the page carries a fresh one.
        let fresh = field(&html, "form_token");
        assert_ne!(fresh, first_token);
        let replay = client.post(app.url("/admin/api-keys")).form(&bad).send().await.expect("replay");
        assert_eq!(replay.status(), StatusCode::CONFLICT);

        // Fixed and sent with the fresh token: created once.
        let good = key_form(&html, &[("service_user_id", &su), ("name", "deploy"), ("expires_in_days", "30"), ("allowed_tools", "whoami")]);
        let res = client.post(app.url("/admin/api-keys")).form(&good).send().await.expect("create");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.text().await.expect("html").contains("only time"));
        assert_eq!(app.count("api_keys").await, before_keys + 1);
    }

    async fn a_date_past_the_policy_and_an_unknown_service_user_are_named_in_the_form_s_words(app: TestApp) {
        app.create_service_user("ci-bot").await;
        let (client, page) = keys_page(&app).await;
        let form = key_form(&page, &[("service_user", "nobody-by-that-name"), ("name", "deploy"), ("expires_on", "2999-01-31")]);
        let html = refused(&app, &client, &form).await;
        assert!(html.contains("There is no service user named `nobody-by-that-name`"), "{html}");
        assert!(html.contains("The expiry date is beyond the tenant maximum"), "{html}");
        assert_eq!(typed(&html, "name"), "deploy");
    }

    async fn a_service_user_of_another_tenant_is_refused_beside_the_field(app: TestApp) {
        app.create_service_user("ci-bot").await;
        let other = app.create_tenant("globex").await;
        let theirs = app.management_key(&other).await;
        let res = app.post_as(&theirs, "/api/v1/tenants/globex/service-users", &json!({"name": "theirs", "owner_email": "t@globex.test"})).await;
        let foreign = expect_json(res, StatusCode::CREATED).await["id"].as_str().expect("id").to_owned();
        let (client, page) = keys_page(&app).await;
        let form = key_form(&page, &[("service_user_id", &foreign), ("name", "deploy")]);
        let html = refused(&app, &client, &form).await;
        assert!(html.contains("That service user is not in this tenant"), "{html}");
    }
}

both_engines! {
    async fn the_tenant_s_key_cap_is_said_above_the_form_and_the_input_is_kept(app: TestApp) {
        // The two management keys (one per start) are the working keys: the cap is reached.
        let clock = app.clock.clone();
        let app = TestApp::spawn_with(app.stop().await, &[("KEYSMITH_MAX_KEYS_PER_TENANT", "2".to_owned())], Some(clock)).await;
        let su = app.create_service_user("ci-bot").await;
        let (client, page) = keys_page(&app).await;
        let form = key_form(&page, &[("service_user_id", &su), ("name", "one too many"), ("expires_in_days", "30")]);
        let html = refused(&app, &client, &form).await;
        let general = html.split("id=\"new-general-error\">").nth(1).expect("the reason above the form");
        assert!(general.split("</p>").next().expect("text").contains("A tenant has at most 2 working keys"), "{html}");
        assert_eq!(typed(&html, "name"), "one too many");
    }
}
