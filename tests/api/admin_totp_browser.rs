//! TOTP in real headless Chromium: enrol by reading the secret from the
//! page, sign in with a computed code, use a recovery code once.

use std::time::Duration;

use keysmith::domain::{people::accounts::Role, people::totp::TotpSecret};

use crate::{
    admin::{PASSWORD, admin_user},
    both_engines,
    chromium::Browser,
    helpers::TestApp,
};

async fn password_step(b: &Browser, app: &TestApp) {
    b.goto(&app.url("/admin/sign-in")).await;
    b.fill("#email", "admin@acme.test").await;
    b.fill("#password", PASSWORD).await;
    b.click("main form button[type=submit]").await;
    b.wait_for_text("Your code").await;
}

async fn code_step(b: &Browser, code: &str) {
    b.fill("#code", code).await;
    b.click("main form button[type=submit]").await;
}

async fn sign_out(b: &Browser) {
    b.click(".signout button").await;
    b.wait_for_text("Sign in").await;
}

both_engines! {
    async fn an_admin_enrols_totp_and_signs_in_with_a_code_and_a_recovery_code_in_chromium(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let label = format!("{:?}-totp", app.db.engine).to_lowercase();
        let browser = Browser::start(&label).await;
        let b = &browser;
        browser.run(Duration::from_secs(120), async {
            b.goto(&app.url("/admin/sign-in")).await;
            b.fill("#email", "admin@acme.test").await;
            b.fill("#password", PASSWORD).await;
            b.click("main form button[type=submit]").await;
            b.wait_for_text("API keys").await;

            // Enrol: the secret is read from the page, as a person would type it.
            b.goto(&app.url("/admin/account")).await;
            b.click("a[href='/admin/account/totp']").await;
            b.wait_for_text("Set up an authenticator app").await;
            assert_eq!(b.count(".qr svg").await, 1, "the QR code is drawn on the page, under the CSP");
            let text = b.find("#totp-secret").await.text().await.expect("secret");
            let secret = TotpSecret::from_base32(text.trim()).expect("a base32 secret");
            b.screenshot("11-totp-enrol").await;
            code_step(b, &secret.code_at(app.now()).expect("code")).await;
            b.wait_for_text("recovery codes").await;
            let mut codes = Vec::new();
            for element in b.client.find_all(fantoccini::Locator::Css("code.recovery-code")).await.expect("codes") {
                codes.push(element.text().await.expect("code"));
            }
            assert_eq!(codes.len(), 10);
            b.screenshot("12-totp-recovery-codes").await;
            b.goto(&app.url("/admin/api-keys")).await;
            sign_out(b).await;

            // Password, then a computed code (a later step: codes are single use).
            app.clock.advance(time::Duration::seconds(30));
            password_step(b, &app).await;
            b.goto(&app.url("/admin/api-keys")).await;
            b.wait_for_text("Sign in").await;
            assert!(b.path().await.ends_with("/admin/sign-in"), "nothing opens between the two steps");
            password_step(b, &app).await;
            code_step(b, &secret.code_at(app.now()).expect("code")).await;
            b.wait_for_text("API keys").await;
            sign_out(b).await;

            // A recovery code signs in once; the second use is refused.
            password_step(b, &app).await;
            code_step(b, &codes[0]).await;
            b.wait_for_text("API keys").await;
            sign_out(b).await;
            password_step(b, &app).await;
            code_step(b, &codes[0]).await;
            b.wait_for_text("That code is not right").await;
            b.screenshot("13-recovery-code-reused").await;
            assert!(b.path().await.ends_with("/admin/sign-in/totp"));
        }).await;
    }
}
