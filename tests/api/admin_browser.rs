//! The admin UI end to end in real headless Chromium: what an admin does on
//! a normal day, with screenshots of each main page in `tests/artifacts/`.

use std::time::Duration;

use fantoccini::key::Key;

use keysmith::domain::people::accounts::Role;

use crate::{
    admin::{PASSWORD, account, admin_user},
    both_engines,
    chromium::Browser,
    helpers::TestApp,
};

/// Signs in through the form, as a person does.
pub(crate) async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&app.url("/admin/sign-in")).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("main form button[type=submit]").await;
    b.wait_for_text("API keys").await;
}

/// The key id is the middle part of `<prefix>_<id>_<secret>`.
fn key_id(plaintext: &str) -> &str {
    plaintext.split('_').nth(1).expect("a key id in the key")
}

both_engines! {
    async fn an_admin_issues_rotates_and_revokes_a_key_in_chromium(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        account(&app, "root@keysmith.test", true).await;
        app.create_service_user("ci-bot").await;
        let label = format!("{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            b.goto(&app.url("/admin/sign-in")).await;
            b.screenshot("01-sign-in").await;
            sign_in(b, &app, "admin@acme.test").await;
            b.screenshot("02-keys").await;

            // Create: the key is on the POST's answer, once.
            let keys_before = app.count("api_keys").await;
            b.click("details.create summary").await;
            b.fill("#new-name", "deploy pipeline").await;
            b.click("input[name=expires_in_days][value='30']").await;
            b.click("details.create button[type=submit]").await;
            let first = b.value("input.plaintext").await;
            assert!(first.starts_with("ks_"), "a key is shown: {first:?}");
            b.wait_for_text("only time Keysmith shows this key").await;
            b.click("button.copy").await;
            // The clipboard answers asynchronously: the label changes a moment
            // after the click (CI once read it before), so wait for it, bounded.
            let mut copy = String::new();
            for _ in 0..50 {
                copy = b.find("button.copy").await.text().await.expect("text");
                if copy != "Copy" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(copy == "Copied" || copy == "Press Ctrl+C", "the copy button ran under the CSP: {copy}");
            b.screenshot("03-key-shown-once").await;
            assert_eq!(app.verify_code(&first).await, "valid", "the key read from the page works");
            assert_eq!(app.count("api_keys").await, keys_before + 1);

            // Reload re-POSTs the form (chromedriver confirms resubmission): refused, nothing minted.
            b.client.refresh().await.expect("reload");
            let page = b.source().await;
            assert!(!page.contains(&first), "reload never shows the key again");
            assert!(page.contains("already submitted"), "and says why: {page}");
            assert_eq!(app.count("api_keys").await, keys_before + 1, "a re-POST mints nothing");
            b.client.back().await.expect("back");
            assert!(!b.source().await.contains(&first), "nor does the back button");
            b.goto(&app.url("/admin/api-keys")).await;
            let list = b.source().await;
            assert!(!list.contains(&first) && list.contains("deploy pipeline"));

            // Key page, then rotate: the new key once, and until when the old one works.
            b.click(&format!("table a[href^='/admin/api-keys/{}']", key_id(&first))).await;
            b.wait_for_text("Audit trail").await;
            b.screenshot("04-key-detail").await;
            b.click("form[action$='/rotate'] button[type=submit]").await;
            let second = b.value("input.plaintext").await;
            assert_ne!(second, first);
            b.wait_for_text("keeps working until").await;
            b.screenshot("05-rotated").await;
            assert_eq!(app.verify_code(&first).await, "valid", "the old key works through the overlap");
            assert_eq!(app.verify_code(&second).await, "valid");

            b.goto(&app.url("/admin/api-keys")).await;
            b.find("#service_user_id").await.select_by_label("ci-bot").await.expect("choose ci-bot");
            b.click(".filters button").await;
            b.wait_for_text("works until").await;
            assert_eq!(b.count(".badge.rotating").await, 1, "the old key is rotating");
            assert_eq!(b.count(".badge.active").await, 1, "the new key is active");
            b.screenshot("06-keys-rotating").await;

            // Revoke the old one, with the confirmation box ticked.
            b.goto(&app.url(&format!("/admin/api-keys/{}", key_id(&first)))).await;
            b.fill("#reason", "moved to the new key").await;
            b.click("form.danger input[name=confirm]").await;
            b.click("form.danger button[type=submit]").await;
            b.wait_for_text("moved to the new key").await;
            assert_eq!(b.count("h1 .badge.revoked").await, 1);
            assert_eq!(app.verify_code(&first).await, "revoked");
            assert_eq!(app.verify_code(&second).await, "valid");
            b.screenshot("07-revoked").await;

            b.goto(&app.url("/admin/service-users")).await;
            b.wait_for_text("ci-bot").await;
            b.screenshot("08-service-users").await;
            b.click(".signout button").await;
            b.wait_for_text("Sign in").await;

            // A viewer sees the keys and no way to change them. Signed in by keyboard only.
            b.goto(&app.url("/admin/sign-in")).await;
            b.find("#email").await.send_keys(&format!("viewer@acme.test{}{PASSWORD}{}", Key::Tab, Key::Enter)).await.expect("type");
            b.wait_for_text("API keys").await;
            assert_eq!(b.count("details.create").await, 0, "no create form");
            b.goto(&app.url(&format!("/admin/api-keys/{}", key_id(&second)))).await;
            b.wait_for_text("Audit trail").await;
            assert_eq!(b.count("form[action$='/rotate']").await + b.count("form.danger").await, 0, "no rotate or revoke");
            b.screenshot("09-viewer-key-detail").await;
            b.click(".signout button").await;
            b.wait_for_text("Sign in").await;

            sign_in(b, &app, "root@keysmith.test").await;
            b.goto(&app.url("/admin/tenants")).await;
            b.wait_for_text("Add an admin to a tenant").await;
            b.screenshot("10-tenants").await;
        }).await;
    }
}
