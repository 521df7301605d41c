//! The banner on a tenant's admin pages when one of its management keys
//! expires within seven days.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    admin::{PASSWORD, admin_user, browser, sign_in},
    both_engines,
};

/// The key id is the middle part of `<prefix>_<id>_<secret>`.
fn key_id(plaintext: &str) -> &str {
    plaintext.split('_').nth(1).expect("a key id in the key")
}

both_engines! {
    async fn a_management_key_expiring_within_a_week_is_announced(app: TestApp) {
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let globex = app.create_tenant("globex").await;
        app.management_key(&globex).await;
        // acme's management key (the test app's own) expires in 90 days, the
        // tenant default; an ordinary key and a revoked management key expire with it.
        let su = app.create_service_user("ci-bot").await;
        app.create_key(&su, json!({"name": "ordinary"})).await;
        let revoked = app.management_key(&app.tenant).await;
        assert_eq!(app.revoke_key(key_id(&revoked), "retired").await.status(), StatusCode::OK);
        let management = key_id(&app.admin_key).to_owned();

        let client = browser();
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/api-keys?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(!page.contains("class=\"warning banner\""), "90 days left: no banner");

        app.clock.advance(time::Duration::days(84));
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        for path in ["/admin/api-keys?tenant=acme", "/admin/service-users?tenant=acme", "/admin/policy?tenant=acme"] {
            let html = client.get(app.url(path)).send().await.expect("page").text().await.expect("html");
            assert_eq!(html.matches("class=\"warning banner\"").count(), 1, "one banner, for the active management key only, on {path}: {html}");
            assert!(html.contains(&format!("href=\"/admin/api-keys/{management}?tenant=acme\">management</a> expires on ")), "names and links the key on {path}");
        }
        assert_eq!(app.verify_code(&app.admin_key).await, "valid", "still working: the banner comes first");

        app.clock.advance(time::Duration::days(7));
        sign_in(&app, &client, "viewer@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/api-keys?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(!page.contains("class=\"warning banner\""), "expired: the key list says so, no banner");
    }
}
