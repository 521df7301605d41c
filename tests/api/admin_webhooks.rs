//! The Webhooks page: managers add (secret shown once), test and delete;
//! viewers read the delivery history.

use keysmith::domain::users::Role;
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
    webhooks::Receiver,
};

both_engines! {
    async fn an_admin_adds_tests_and_deletes_a_webhook_and_a_viewer_only_reads(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(0).await;
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/webhooks?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains(&format!("disabled after {} failures in a row", keysmith::domain::webhooks::health::DISABLE_AFTER_FAILURES)), "the page states the rule the code applies");
        let form = [
            ("csrf", csrf_of(&page)),
            ("form_token", field(&page, "form_token")),
            ("tenant", "acme".to_owned()),
            ("url", url.clone()),
            ("events", "key.created".to_owned()),
            ("events", "key.revoked".to_owned()),
        ];
        let res = client.post(app.url("/admin/webhooks")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::OK);
        let shown = res.text().await.expect("html");
        let secret = shown
            .split_once("readonly value=\"")
            .and_then(|(_, rest)| rest.split('"').next())
            .expect("the secret on the page")
            .to_owned();
        assert!(secret.starts_with("whsec_"), "{shown}");
        receiver.set_secret(&secret);
        let again = client.post(app.url("/admin/webhooks")).form(&form).send().await.expect("post");
        assert_eq!(again.status(), StatusCode::CONFLICT, "a form token shows a secret once");
        assert_eq!(app.count("webhook_endpoints").await, 1);

        let page = client.get(app.url("/admin/webhooks?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains(&url) && !page.contains(&secret));
        let id: String = sqlx::query_scalar("SELECT id FROM webhook_endpoints").fetch_one(app.state.pool()).await.expect("id");
        let action = [("csrf", csrf_of(&page)), ("tenant", "acme".to_owned())];
        let res = client.post(app.url(&format!("/admin/webhooks/{id}/test"))).form(&action).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        app.tick_and_deliver().await;
        assert_eq!(receiver.accepted().len(), 1);

        let viewer = browser();
        sign_in(&app, &viewer, "viewer@acme.test", PASSWORD).await;
        let page = viewer.get(app.url("/admin/webhooks?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("webhook.test") && page.contains("204") && page.contains("delivered"), "history shown");
        assert!(!page.contains("Send test event") && !page.contains(&secret));
        let viewer_action = [("csrf", csrf_of(&page)), ("tenant", "acme".to_owned())];
        let res = viewer.post(app.url(&format!("/admin/webhooks/{id}/delete"))).form(&viewer_action).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        let res = client.post(app.url(&format!("/admin/webhooks/{id}/delete"))).form(&action).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.count("webhook_endpoints").await, 0);
        let deleted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'webhook.delete'").fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(deleted, 1);
    }
}

both_engines! {
    async fn a_refused_webhook_form_keeps_the_url_and_the_events_with_a_fresh_token(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/webhooks?tenant=acme")).send().await.expect("page").text().await.expect("html");
        let token = field(&page, "form_token");
        let form = [
            ("csrf", csrf_of(&page)),
            ("form_token", token.clone()),
            ("tenant", "acme".to_owned()),
            ("url", "http://hooks.example.com/keysmith".to_owned()),
            ("events", "key.revoked".to_owned()),
        ];
        let res = client.post(app.url("/admin/webhooks")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text().await.expect("html");
        assert!(html.contains("The webhook was not added. “URL”: https is required"), "{html}");
        assert!(html.contains("value=\"http://hooks.example.com/keysmith\""), "the URL kept");
        assert!(html.contains("value=\"key.revoked\" checked"), "the chosen event kept");
        assert!(!html.contains("value=\"key.created\" checked"), "an event not chosen stays unticked");
        assert_ne!(field(&html, "form_token"), token, "a fresh form token");
        assert_eq!(app.count("webhook_endpoints").await, 0, "nothing saved");
    }
}
