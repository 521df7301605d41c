//! The refused key form in real Chromium at 390 px and 1280 px, light and
//! dark: the errors sit under their fields, what was typed is still there,
//! the page does not scroll sideways; fixed, the same form creates the key.
//! Screenshots go to `tests/artifacts/key-form-*/`.

use std::time::Duration;

use keysmith::domain::people::accounts::Role;
use serde_json::Value;

use crate::{
    admin::admin_user,
    admin_browser::sign_in,
    chromium::{Browser, Screen},
    helpers::{Engine, TestApp},
};

/// Where an error sits relative to its field, and whether the page fits. A
/// group's error (the limits) sits at the top of its fieldset, inside it.
async fn layout(b: &Browser, field: &str, error: &str) -> Value {
    b.client
        .execute(
            "const [field, error] = [document.querySelector(arguments[0]), document.querySelector(arguments[1])];
             const [f, e] = [field.getBoundingClientRect(), error.getBoundingClientRect()];
             const root = document.documentElement;
             return {
               invalid: field.getAttribute('aria-invalid'),
               described_by: field.getAttribute('aria-describedby'),
               gap: field.contains(error) ? e.top - f.top : e.top - f.bottom,
               page_width: root.scrollWidth,
               viewport: root.clientWidth,
             };",
            vec![field.into(), error.into()],
        )
        .await
        .expect("layout")
}

#[tokio::test]
async fn a_refused_key_form_shows_errors_beside_the_fields_and_keeps_the_input_on_a_phone_and_a_desktop()
 {
    let app = TestApp::spawn(Engine::Sqlite).await;
    admin_user(&app, "admin@acme.test", Role::Admin).await;
    app.create_service_user("ci-bot").await;
    for (look, screen) in Screen::each_look() {
        let label = format!("key-form-{look}");
        let browser = Browser::start_with(&label, screen).await;
        let b = &browser;
        browser
            .run(Duration::from_secs(90), async {
                sign_in(b, &app, "admin@acme.test").await;
                b.goto(&app.url("/admin/api-keys?tenant=acme")).await;
                b.client
                    .execute(
                        "document.querySelector('details.create').open = true",
                        vec![],
                    )
                    .await
                    .expect("open the form");
                let keys_before = app.count("api_keys").await;
                // Each passes the browser's own checks; the server refuses all three.
                b.fill("#new-name", "   ").await;
                b.fill("#new-tools", "whoami, bad tool").await;
                b.fill("#new-tool-rates", "search*").await;
                b.click("details.create button[type=submit]").await;
                b.wait_for_text("The key was not created").await;
                b.screenshot("01-refused").await;
                assert_eq!(app.count("api_keys").await, keys_before, "nothing saved");
                let at = label.as_str();
                for (field, error, words) in [
                    ("#new-name", "#new-name-error", "The name must not be empty"),
                    ("#new-tools", "#new-tools-error", "`bad tool`"),
                    (
                        "#new-limits",
                        "#new-limits-error",
                        "looks like `search* = 60`",
                    ),
                ] {
                    let text = b.find(error).await.text().await.expect("text");
                    assert!(text.contains(words), "{error} says {words}: {text} ({at})");
                    let m = layout(b, field, error).await;
                    assert_eq!(m["invalid"], "true", "{field} is marked ({at}): {m}");
                    assert!(
                        m["gap"].as_f64().is_some_and(|g| (0.0..80.0).contains(&g)),
                        "{error} sits under {field} ({at}): {m}"
                    );
                    assert!(
                        m["page_width"].as_f64() <= m["viewport"].as_f64(),
                        "no sideways scroll ({at}): {m}"
                    );
                }
                assert_eq!(
                    b.value("#new-tools").await,
                    "whoami, bad tool",
                    "input kept ({at})"
                );
                assert_eq!(
                    b.value("#new-tool-rates").await,
                    "search*",
                    "input kept ({at})"
                );

                b.fill("#new-name", "deploy pipeline").await;
                b.fill("#new-tools", "whoami").await;
                b.fill("#new-tool-rates", "search* = 60").await;
                b.click("details.create button[type=submit]").await;
                let key = b.value("input.plaintext").await;
                assert!(key.starts_with("ks_"), "created once fixed ({at}): {key:?}");
                b.screenshot("02-created").await;
                assert_eq!(app.count("api_keys").await, keys_before + 1);
                assert_eq!(app.verify_code(&key).await, "valid");
            })
            .await;
    }
}
