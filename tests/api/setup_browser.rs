//! First run in real headless Chromium: the printed setup link creates the
//! first superadmin, who then signs in; the link works once.

use std::time::Duration;

use crate::{both_engines, chromium::Browser};

const PASSWORD: &str = "a long first password";

both_engines! {
    async fn the_first_superadmin_is_created_from_the_setup_link_in_chromium(app: TestApp) {
        let token = app.state.first_run.issue_if_needed(app.state.pool(), app.now()).await.expect("query").expect("a link").expose().to_owned();
        let link = app.url(&format!("/admin/setup?token={token}"));
        let label = format!("{:?}", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            b.goto(&link).await;
            b.wait_for_text("Create the superadmin").await;
            b.screenshot("19-first-run-setup").await;
            b.fill("#email", "root@acme.test").await;
            b.fill("#password", PASSWORD).await;
            b.fill("#password_again", PASSWORD).await;
            b.click("main form button[type=submit]").await;
            b.wait_for_text("Sign in").await;
            b.fill("#email", "root@acme.test").await;
            b.fill("#password", PASSWORD).await;
            b.click("main form button[type=submit]").await;
            b.wait_for_text("API keys").await;
            b.screenshot("20-first-superadmin-signed-in").await;
            // The link is spent: opening it again says so.
            b.goto(&link).await;
            b.wait_for_text("Setup link not valid").await;
        })
        .await;
        let admins: Vec<(String, i64)> = sqlx::query_as("SELECT email, is_superadmin FROM admin_users")
            .fetch_all(app.state.pool())
            .await
            .expect("admins");
        assert_eq!(admins, [("root@acme.test".to_owned(), 1)]);
    }
}
