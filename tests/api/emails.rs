//! Owner emails against a real SMTP server: exactly once, durable, no secret.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::{
    both_engines,
    helpers::{TestApp, expect_json, secret_of},
    smtp_sink::{SmtpSink, decoded},
};

async fn with_smtp(app: TestApp, sink: &SmtpSink) -> TestApp {
    let clock = app.clock.clone();
    let db = app.stop().await;
    TestApp::spawn_with(db, &[("KEYSMITH_SMTP_URL", sink.url())], Some(clock)).await
}

async fn notifications(app: &TestApp, key_id: &str) -> Vec<Value> {
    let body = expect_json(
        app.get(&format!("/api/v1/tenants/acme/keys/{key_id}/notifications"))
            .await,
        StatusCode::OK,
    )
    .await;
    body["items"].as_array().expect("items").clone()
}

both_engines! {
    async fn one_rotation_email_per_rotation_without_secrets(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        let old = app.create_key(&su, json!({"name": "deploy"})).await;
        let old_id = old["id"].as_str().expect("id");
        let rotation = expect_json(app.rotate_key(old_id).await, StatusCode::CREATED).await;
        let new_key = rotation["new"]["key"].as_str().expect("key");
        app.tick().await;
        app.tick().await;

        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "exactly one rotation email");
        let mail = decoded(&messages[0]);
        assert!(mail.contains("X-Envelope-To: ci-bot@owner.test"), "{mail}");
        assert!(mail.contains(rotation["new"]["hint"].as_str().expect("hint")), "names the new key's hint");
        let cutoff = app.now() + Duration::days(7);
        let cutoff_words = cutoff.format(time::macros::format_description!("[day] [month repr:long] [year] at [hour]:[minute] UTC")).expect("format");
        assert!(mail.contains(&cutoff_words), "states the cutoff {cutoff_words}: {mail}");
        assert!(mail.contains(&format!("/admin/api-keys/{}", rotation["new"]["id"].as_str().expect("id"))));
        for key in [old["key"].as_str().expect("key"), new_key, app.admin_key.as_str()] {
            assert!(!mail.contains(&secret_of(key)), "no key secret in any email");
        }
        let history = notifications(&app, old_id).await;
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["kind"], "rotation");
        assert_eq!(history[0]["status"], "sent");
        assert_eq!(history[0]["recipient"], "ci-bot@owner.test");
    }

    async fn a_revocation_by_someone_else_tells_the_owner(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"name": "deploy"})).await;
        let key_id = key["id"].as_str().expect("id");
        expect_json(app.revoke_key(key_id, "seen in a public paste").await, StatusCode::OK).await;
        app.tick().await;
        app.tick().await;
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "exactly one revocation email");
        let mail = decoded(&messages[0]);
        assert!(mail.contains("X-Envelope-To: ci-bot@owner.test"), "{mail}");
        assert!(mail.contains("was revoked by the management key"), "{mail}");
        assert!(mail.contains("seen in a public paste"), "states the reason: {mail}");
        for secret in [key["key"].as_str().expect("key"), app.admin_key.as_str()] {
            assert!(!mail.contains(&secret_of(secret)), "no key secret in any email");
        }
        assert_eq!(notifications(&app, key_id).await[0]["kind"], "revocation");

        // The owner revoking their own key hears nothing.
        let own = app.create_key(&su, json!({"name": "own"})).await;
        let tenant = app.tenant.clone();
        let owner = keysmith::domain::Actor::User { id: keysmith::domain::AdminId::new("u1"), email: "CI-bot@owner.test".into() };
        keysmith::domain::keys::revoke(app.state.pool(), &tenant, &keysmith::domain::KeyId::new(own["id"].as_str().expect("id")), "done with it", &owner, app.now()).await.expect("revoke");
        app.tick().await;
        assert_eq!(sink.messages().len(), 1, "no email for the owner's own revocation");
    }

    async fn one_reminder_per_threshold_across_ticks_and_restarts(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"expires_in_days": 40})).await;
        let key_id = key["id"].as_str().expect("id").to_owned();
        let expires = app.now() + Duration::days(40);
        let expiry_words = expires.format(time::macros::format_description!("[day] [month repr:long] [year] at [hour]:[minute] UTC")).expect("format");

        app.tick().await;
        assert_eq!(sink.messages().len(), 0, "nothing due yet");
        app.clock.set(expires - Duration::days(30) + Duration::hours(1));
        app.tick().await;
        app.tick().await;
        assert_eq!(sink.messages().len(), 1, "the 30-day reminder, once");

        let clock = app.clock.clone();
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_SMTP_URL", sink.url())], Some(clock)).await;
        app.tick().await;
        assert_eq!(sink.messages().len(), 1, "a restart sends nothing again");

        app.clock.set(expires - Duration::days(7) + Duration::minutes(5));
        app.tick().await;
        app.clock.set(expires - Duration::days(1) + Duration::minutes(5));
        app.tick().await;
        app.tick().await;
        app.clock.set(expires + Duration::days(1));
        app.tick().await;

        let mails: Vec<String> = sink.messages().iter().map(|m| decoded(m)).collect();
        assert_eq!(mails.len(), 3, "30, 7 and 1 days: three emails, no more");
        for (mail, days) in mails.iter().zip(["30 days", "7 days", "1 day,"]) {
            assert!(mail.contains(&format!("expires in {days}")), "{days}: {mail}");
            assert!(mail.contains(&expiry_words), "the exact expiry: {mail}");
            assert!(mail.contains(&key_id));
            assert!(!mail.contains(&secret_of(key["key"].as_str().expect("key"))));
        }
        let history = notifications(&app, &key_id).await;
        let thresholds: Vec<_> = history.iter().map(|n| n["threshold_days"].clone()).collect();
        assert_eq!(thresholds, [json!(1), json!(7), json!(30)]);
    }

    async fn short_lived_keys_get_only_the_thresholds_ahead(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        app.create_key(&su, json!({"expires_in_days": 20})).await;
        app.tick().await;
        assert_eq!(sink.messages().len(), 0, "the 30-day moment was before the key existed");
        app.clock.advance(Duration::days(13) + Duration::minutes(1));
        app.tick().await;
        let mails = sink.messages();
        assert_eq!(mails.len(), 1);
        assert!(decoded(&mails[0]).contains("expires in 7 days"));
    }

    async fn smtp_down_delays_mail_and_loses_none(app: TestApp) {
        let mut sink = SmtpSink::down();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let key_id = key["id"].as_str().expect("id");
        expect_json(app.rotate_key(key_id).await, StatusCode::CREATED).await;
        app.tick().await;
        app.tick().await;

        let pending = notifications(&app, key_id).await;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0]["status"], "pending");
        assert_eq!(pending[0]["attempts"], 1, "the second tick waits for the backoff");
        assert!(pending[0]["last_error"].as_str().is_some_and(|e| e.contains("SMTP")), "{pending:?}");
        let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains("keysmith_email_attempts_failed_total 1"), "{metrics}");

        sink.come_up();
        app.clock.advance(Duration::minutes(1));
        app.tick().await;
        app.tick().await;
        assert_eq!(sink.messages().len(), 1, "delivered once the server is back");
        let sent = notifications(&app, key_id).await;
        assert_eq!(sent[0]["status"], "sent");
        assert_eq!(sent[0]["attempts"], 2);
    }

    async fn revoked_keys_get_no_more_reminders(app: TestApp) {
        let mut sink = SmtpSink::down();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        let pending = app.create_key(&su, json!({"expires_in_days": 60})).await;
        let never = app.create_key(&su, json!({"expires_in_days": 60})).await;
        expect_json(app.revoke_key(never["id"].as_str().expect("id"), "unused").await, StatusCode::OK).await;
        app.clock.advance(Duration::days(30) + Duration::hours(1));
        app.tick().await;
        // A reminder was queued for `pending` but the SMTP server is down; then the key is revoked.
        let queued = notifications(&app, pending["id"].as_str().expect("id")).await;
        assert_eq!(queued[0]["kind"], "expiry_reminder");
        assert_eq!(queued[0]["status"], "pending");
        expect_json(app.revoke_key(pending["id"].as_str().expect("id"), "done").await, StatusCode::OK).await;

        sink.come_up();
        app.clock.advance(Duration::hours(1));
        app.tick().await;
        let sent: Vec<String> = sink.messages().iter().map(|m| decoded(m)).collect();
        assert!(sent.iter().all(|m| !m.contains("expires in")), "no reminder for a revoked key");
        assert_eq!(sent.iter().filter(|m| m.contains("was revoked by")).count(), 2, "each revocation is told once");
        let reminder = |history: Vec<Value>| history.into_iter().find(|n| n["kind"] == "expiry_reminder");
        assert_eq!(reminder(notifications(&app, pending["id"].as_str().expect("id")).await).expect("queued reminder")["status"], "cancelled");
        assert!(reminder(notifications(&app, never["id"].as_str().expect("id")).await).is_none());
    }

    async fn two_instances_send_each_email_once(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink).await;
        let su = app.create_service_user("ci-bot").await;
        let mut ids = Vec::new();
        for _ in 0..6 {
            let key = app.create_key(&su, json!({"expires_in_days": 60})).await;
            ids.push(key["id"].as_str().expect("id").to_owned());
        }
        for id in &ids[..3] {
            expect_json(app.rotate_key(id).await, StatusCode::CREATED).await;
        }
        let other = app.second_instance(&[("KEYSMITH_SMTP_URL", sink.url())]).await;
        // Rotation notices, then (a month later) reminders and cutoff revocations, each raced by two instances.
        let (a, b) = tokio::join!(keysmith::jobs::tick(&app.state), keysmith::jobs::tick(&other));
        a.expect("tick a");
        b.expect("tick b");
        assert_eq!(sink.messages().len(), 3, "one rotation email per rotation");
        app.clock.advance(Duration::days(30) + Duration::hours(1));
        let (a, b) = tokio::join!(keysmith::jobs::tick(&app.state), keysmith::jobs::tick(&other));
        a.expect("tick a");
        b.expect("tick b");
        // 3 untouched originals + 3 rotated-in keys are active and 30 days from expiry.
        assert_eq!(sink.messages().len(), 3 + 6, "one reminder per key and threshold");
        let revocations: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'key.revoke' AND reason = 'rotated'")
            .fetch_one(app.state.pool())
            .await
            .expect("count");
        assert_eq!(revocations.0, 3, "one revocation per cutoff");
    }

    async fn without_smtp_mail_becomes_eml_files(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let rotation = expect_json(app.rotate_key(key["id"].as_str().expect("id")).await, StatusCode::CREATED).await;
        app.tick().await;
        let dir = app.db.dir.path().join("outbox");
        let files: Vec<_> = std::fs::read_dir(&dir).expect("outbox dir").map(|e| e.expect("entry").path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let mail = decoded(&std::fs::read_to_string(&files[0]).expect("read"));
        assert!(mail.contains("was rotated"));
        assert!(!mail.contains(&secret_of(rotation["new"]["key"].as_str().expect("key"))));
    }
}
