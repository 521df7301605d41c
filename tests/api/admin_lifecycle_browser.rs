//! Operating a tenant in real headless Chromium: its key policy, disabling a
//! service user, and the banner before a management key expires. Screenshots
//! in `tests/artifacts/`.

use std::time::Duration;

use serde_json::json;

use keysmith::domain::people::accounts::Role;

use crate::{admin::admin_user, admin_browser::sign_in, both_engines, chromium::Browser};

both_engines! {
    async fn an_admin_sets_the_policy_disables_a_service_user_and_sees_the_banner_in_chromium(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await["key"].as_str().expect("key").to_owned();
        let label = format!("{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            sign_in(b, &app, "admin@acme.test").await;

            // Key policy: a refused change keeps what was typed, a valid one is saved.
            b.click("nav.sections a[href^='/admin/policy']").await;
            b.wait_for_text("Prefix of new keys").await;
            b.fill("#max-expiry", "120").await;
            b.fill("#default-expiry", "400").await;
            b.click("form.policy button[type=submit]").await;
            b.wait_for_text("“Default expiry” must be between 1 and “Maximum expiry” (120)").await;
            assert_eq!(b.value("#default-expiry").await, "400", "what was typed stays");
            b.screenshot("14-policy-refused").await;
            b.fill("#default-expiry", "60").await;
            b.fill("#overlap", "3").await;
            b.click("form.policy button[type=submit]").await;
            b.wait_for_text("Key policy saved").await;
            b.screenshot("15-policy-saved").await;
            b.goto(&app.url("/admin/api-keys")).await;
            b.click("details.create summary").await;
            assert_eq!(b.count("input[name=expires_in_days]").await, 3, "30, 90 and the 120-day maximum");
            assert_eq!(b.count("input[name=expires_in_days][value='120']").await, 1);
            b.screenshot("16-create-form-follows-policy").await;

            // Disable ci-bot, with the confirmation box ticked: its key is refused at once.
            b.goto(&app.url("/admin/service-users")).await;
            b.click(&format!("a[href^='/admin/service-users/{su}']")).await;
            b.wait_for_text("Owner email").await;
            b.fill("#su-owner", "platform@acme.test").await;
            b.click("form.edit button[type=submit]").await;
            b.wait_for_text("platform@acme.test").await;
            b.click("form.disable input[name=confirm]").await;
            b.click("form.disable button[type=submit]").await;
            b.wait_for_text("Disabled since").await;
            assert_eq!(b.count("h1 .badge.disabled").await, 1);
            assert_eq!(app.verify_code(&key).await, "disabled");
            b.screenshot("17-service-user-disabled").await;
            b.goto(&app.url("/admin/service-users")).await;
            assert_eq!(b.count("td .badge.disabled").await, 1, "marked in the list");

            // Six days before the management key expires, every tenant page says so.
            app.clock.advance(time::Duration::days(84));
            sign_in(b, &app, "admin@acme.test").await;
            b.wait_for_text("Rotate it now").await;
            b.click(".banner a").await;
            b.wait_for_text("Audit trail").await;
            assert!(b.path().await.starts_with("/admin/api-keys/"), "the banner links to the key");
            b.goto(&app.url("/admin/api-keys")).await;
            b.wait_for_text("Rotate it now").await;
            b.screenshot("18-management-key-banner").await;
        }).await;
    }
}
