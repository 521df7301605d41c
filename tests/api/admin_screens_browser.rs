//! The admin UI on a phone (390 px) and a desktop (1280 px), in the light and
//! the dark theme, in real headless Chromium: no page scrolls sideways (wide
//! tables scroll inside their own box), the navigation and Sign out stay on
//! screen, the theme follows the system's preference. Screenshots of every
//! page in every combination go to `tests/artifacts/screens-*/`. And every
//! destructive action asks first.

use std::time::Duration;

use keysmith::domain::people::accounts::Role;
use serde_json::{Value, json};

use crate::{
    admin::{account, admin_user},
    admin_browser::sign_in,
    both_engines,
    chromium::{Browser, Screen},
    helpers::{Engine, TestApp, expect_json},
};

/// What the page measures in the browser itself.
async fn measure(b: &Browser) -> Value {
    b.client
        .execute(
            "const root = document.documentElement;
             const button = document.querySelector('.signout button');
             const out = button ? button.getBoundingClientRect() : {right: 0, width: 0};
             return {
               page_width: root.scrollWidth,
               viewport: root.clientWidth,
               signout_right: out.right,
               signout_width: out.width,
               background: getComputedStyle(document.body).backgroundColor,
               too_wide: [...document.querySelectorAll('body *')]
                 .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 0.5)
                 .filter((e) => !e.closest('table'))
                 .slice(0, 5)
                 .map((e) => e.tagName + '.' + e.className + '#' + e.id),
             };",
            vec![],
        )
        .await
        .expect("measure the page")
}

/// No sideways scroll, the phone's own viewport, and the theme asked for.
fn fits(m: &Value, page: &str, screen: Screen) {
    let at = format!("{page} at {} px, dark {}: {m}", screen.width, screen.dark);
    if screen.width < 500 {
        assert_eq!(
            m["viewport"].as_f64(),
            Some(f64::from(screen.width)),
            "the phone's viewport: {at}"
        );
    }
    assert!(
        m["page_width"].as_f64() <= m["viewport"].as_f64(),
        "the page scrolls sideways: {at}"
    );
    let expected = if screen.dark {
        "rgb(13, 17, 23)"
    } else {
        "rgb(246, 248, 250)"
    };
    assert_eq!(m["background"], expected, "the theme: {at}");
}

#[tokio::test]
async fn every_page_fits_a_phone_and_a_desktop_in_both_themes() {
    let app = TestApp::spawn(Engine::Sqlite)
        .await
        .allowing_private_webhooks()
        .await;
    account(&app, "root@keysmith.test", true).await;
    let su = app
        .create_service_user("a-service-user-with-a-rather-long-name-for-a-phone")
        .await;
    let key = app.create_key(&su, json!({"name": "deploy key with a long name", "allowed_tools": ["search_documents", "read_file"]})).await;
    let key_id = key["id"].as_str().expect("id").to_owned();
    let hook = app.post("/api/v1/tenants/acme/webhooks", &json!({"url": "http://127.0.0.1:9/keysmith/a/long/path/for/the/receiver/that/goes/on", "events": ["key.created", "key.rotated"]})).await;
    expect_json(hook, reqwest::StatusCode::CREATED).await;
    let pages = [
        ("keys", "/admin/api-keys?tenant=acme".to_owned()),
        ("key", format!("/admin/api-keys/{key_id}?tenant=acme")),
        (
            "service-users",
            "/admin/service-users?tenant=acme".to_owned(),
        ),
        (
            "service-user",
            format!("/admin/service-users/{su}?tenant=acme"),
        ),
        ("webhooks", "/admin/webhooks?tenant=acme".to_owned()),
        ("policy", "/admin/policy?tenant=acme".to_owned()),
        ("account", "/admin/account".to_owned()),
        ("accounts", "/admin/accounts".to_owned()),
        ("tenants", "/admin/tenants".to_owned()),
        ("totp", "/admin/account/totp".to_owned()),
    ];
    // Pages without the navigation: the answer to a POST, an error.
    let bare = [(
        "not-found",
        "/admin/api-keys/key_doesnotexist?tenant=acme".to_owned(),
    )];
    for (look, screen) in Screen::each_look() {
        let label = format!("screens-{look}");
        let browser = Browser::start_with(&label, screen).await;
        let b = &browser;
        browser
            .run(Duration::from_secs(120), async {
                b.goto(&app.url("/admin/sign-in")).await;
                b.find("main h1").await;
                b.screenshot("sign-in").await;
                fits(&measure(b).await, "sign-in", screen);
                sign_in(b, &app, "root@keysmith.test").await;
                for (page, path) in &bare {
                    b.goto(&app.url(path)).await;
                    b.find("main h1").await;
                    b.screenshot(page).await;
                    fits(&measure(b).await, page, screen);
                }
                // The answer to the create form: the key, shown once.
                b.goto(&app.url("/admin/api-keys?tenant=acme")).await;
                b.client
                    .execute(
                        "document.querySelector('details.create').open = true",
                        vec![],
                    )
                    .await
                    .expect("open the form");
                b.fill("#new-name", "a key made on a small screen").await;
                b.click("details.create button[type=submit]").await;
                b.find("input.plaintext").await;
                b.screenshot("key-shown").await;
                fits(&measure(b).await, "key-shown", screen);
                for (page, path) in &pages {
                    b.goto(&app.url(path)).await;
                    b.find("main h1").await;
                    b.screenshot(page).await;
                    let m = measure(b).await;
                    fits(&m, page, screen);
                    let at = format!("{page} at {} px, dark {}: {m}", screen.width, screen.dark);
                    assert!(
                        m["signout_width"].as_f64() > Some(0.0),
                        "Sign out is shown: {at}"
                    );
                    assert!(
                        m["signout_right"].as_f64() <= m["viewport"].as_f64(),
                        "Sign out is cut off: {at}"
                    );
                }
            })
            .await;
    }
}

both_engines! {
    async fn destructive_actions_ask_first_and_a_no_changes_nothing(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        account(&app, "root@keysmith.test", true).await;
        account(&app, "someone@acme.test", false).await;
        let hook = app.post("/api/v1/tenants/acme/webhooks", &json!({"url": "http://127.0.0.1:9/hook", "events": ["key.created"]})).await;
        expect_json(hook, reqwest::StatusCode::CREATED).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await["key"].as_str().expect("key").to_owned();
        let key_id = key.split('_').nth(1).expect("id").to_owned();
        let label = format!("confirm-{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start_with(&label, Screen { answer_dialogs_myself: true, ..Screen::DESKTOP }).await;
        let b = &browser;
        browser.run(Duration::from_secs(90), async {
            // Revoking a key: "no" leaves it working, though the box is ticked.
            sign_in(b, &app, "owner@acme.test").await;
            b.goto(&app.url(&format!("/admin/api-keys/{key_id}?tenant=acme"))).await;
            b.click("form.danger input[name=confirm]").await;
            b.click("form.danger button[type=submit]").await;
            let question = b.client.get_alert_text().await.expect("a confirmation dialog");
            assert!(question.contains("Revoke this key now"), "{question}");
            b.client.dismiss_alert().await.expect("answer no");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(app.verify_code(&key).await, "valid", "no means no");

            // Deleting a webhook: "no" keeps it, "yes" deletes it.
            b.goto(&app.url("/admin/webhooks?tenant=acme")).await;
            let delete = "form[action$='/delete'] button[type=submit]";
            b.click(delete).await;
            let question = b.client.get_alert_text().await.expect("a confirmation dialog");
            assert!(question.contains("Delete this webhook endpoint"), "{question}");
            b.client.dismiss_alert().await.expect("answer no");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(app.count("webhook_endpoints").await, 1, "no means no");
            b.click(delete).await;
            b.client.accept_alert().await.expect("answer yes");
            b.wait_for_text("No webhooks").await;
            assert_eq!(app.count("webhook_endpoints").await, 0);
            b.click(".signout button").await;
            b.wait_for_text("Sign in").await;

            // Disabling an account asks too.
            sign_in(b, &app, "root@keysmith.test").await;
            b.goto(&app.url("/admin/accounts")).await;
            b.click("button[data-confirm^='Disable this account']").await;
            let question = b.client.get_alert_text().await.expect("a confirmation dialog");
            assert!(question.contains("sessions end at once"), "{question}");
            b.client.dismiss_alert().await.expect("answer no");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let disabled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_users WHERE disabled_at IS NOT NULL").fetch_one(app.state.pool()).await.expect("count");
            assert_eq!(disabled, 0, "no means no");
        }).await;
    }
}
