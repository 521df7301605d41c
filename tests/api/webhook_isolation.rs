//! No tenant's webhooks hold up anyone else: delivery runs apart from the
//! scheduler's tick, a receiver that never answers costs its own tenant one
//! timeout per pause, endpoints that keep failing are disabled (owners told
//! by email), test events are spaced out and endpoints per tenant capped.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use keysmith::domain::{events::webhooks::health, people::accounts::Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, task::JoinSet};

use crate::{
    admin::admin_user,
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
    smtp_sink::{SmtpSink, decoded},
    webhooks::{Receiver, create_webhook, deliveries},
};

/// A receiver that accepts connections and never answers, holding each
/// open until the client gives up.
struct BlackHole {
    url: String,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

impl BlackHole {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (accepted, open): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let (count, live) = (accepted.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                live.fetch_add(1, Ordering::SeqCst);
                let live = live.clone();
                tokio::spawn(async move {
                    // Read (and ignore) until the client hangs up.
                    let mut sink = [0u8; 1024];
                    while socket.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            url,
            accepted,
            open,
        }
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections the client has not given up on yet.
    fn waiting(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

async fn with_smtp(app: TestApp, sink: &SmtpSink, extra: &[(&str, String)]) -> TestApp {
    let clock = app.clock.clone();
    let db = app.stop().await;
    // The server's own webhook task stays out of the way: each test runs
    // its rounds itself, to see what one round does.
    let mut env = vec![
        ("KEYSMITH_SMTP_URL", sink.url()),
        ("KEYSMITH_WEBHOOK_ALLOW_PRIVATE", "1".to_owned()),
        ("KEYSMITH_WEBHOOK_INTERVAL_SECS", "3600".to_owned()),
        // Long enough that a slow machine still sees the stalled attempt
        // waiting while the rest goes on.
        ("KEYSMITH_WEBHOOK_TIMEOUT_SECS", "30".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    TestApp::spawn_with(db, &env, Some(clock)).await
}

async fn endpoint(app: &TestApp, id: &str) -> Value {
    let list = expect_json(
        app.get("/api/v1/tenants/acme/webhooks").await,
        StatusCode::OK,
    )
    .await;
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["id"] == id)
        .expect("endpoint")
        .clone()
}

both_engines! {
    async fn a_receiver_that_never_answers_holds_up_nobody_else(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink, &[]).await;
        let hole = BlackHole::start().await;
        let stalled = create_webhook(&app, &hole.url, json!(["key.created"])).await;
        let su = app.create_service_user("ci-bot").await;
        for n in 0..12 {
            app.create_key(&su, json!({"name": format!("k{n}")})).await;
        }
        // Another tenant, with a receiver that answers.
        let globex = app.create_tenant("globex").await;
        let globex_key = app.management_key(&globex).await;
        let (receiver, url) = Receiver::start(0).await;
        let res = app.post_as(&globex_key, "/api/v1/tenants/globex/webhooks", &json!({"url": url, "events": ["key.created"]})).await;
        receiver.set_secret(expect_json(res, StatusCode::CREATED).await["secret"].as_str().expect("secret"));
        let res = app.post_as(&globex_key, "/api/v1/tenants/globex/service-users", &json!({"name": "bot", "owner_email": "bot@globex.test"})).await;
        let globex_su = expect_json(res, StatusCode::CREATED).await["id"].as_str().expect("id").to_owned();
        let res = app.post_as(&globex_key, "/api/v1/tenants/globex/keys", &json!({"service_user_id": globex_su, "name": "deploy"})).await;
        expect_json(res, StatusCode::CREATED).await;
        // And an owner email waiting to go out.
        let rotated = app.create_key(&su, json!({"name": "rotated"})).await;
        expect_json(app.rotate_key(rotated["id"].as_str().expect("id")).await, StatusCode::CREATED).await;

        let state = app.state.clone();
        let round = tokio::spawn(async move { keysmith::jobs::deliver_webhooks(&state).await.expect("round") });
        // globex's event arrives while acme's attempt is still waiting.
        for _ in 0..1200 {
            if !receiver.accepted().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(receiver.accepted().len(), 1, "the other tenant's event was delivered");
        assert_eq!((hole.connections(), hole.waiting()), (1, 1), "…while acme's receiver still held its attempt");
        // The scheduler's tick does not wait for webhooks: the email goes out now.
        app.tick().await;
        assert_eq!(hole.waiting(), 1, "the tick finished while the webhook round still waits");
        assert_eq!(sink.messages().len(), 1, "the rotation email was sent");
        assert!(decoded(&sink.messages()[0]).contains("X-Envelope-To: ci-bot@owner.test"));

        let report = round.await.expect("round task");
        assert_eq!(hole.connections(), 1, "one timeout for the stalled endpoint, not one per event");
        assert_eq!(report.retrying, 1, "{report:?}");
        let id = stalled["id"].as_str().expect("id");
        let history = deliveries(&app, id).await;
        assert!(history.len() >= 13, "12 keys and the rotated one: {history:?}");
        assert_eq!(report.deferred as usize, history.len() - 1, "acme's other deliveries waited untried: {report:?}");
        assert_eq!(history.iter().filter(|d| d["attempts"] == 1).count(), 1, "{history:?}");
        assert!(history.iter().all(|d| d["status"] == "pending"));
        assert_eq!(endpoint(&app, id).await["consecutive_failures"], 1);
        // Paused: another round now tries nothing.
        let again = app.deliver_webhooks().await;
        assert_eq!((again.retrying, hole.connections()), (0, 1), "{again:?}");
    }

    async fn an_endpoint_failing_too_long_is_disabled_and_its_owners_told(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink, &[]).await;
        admin_user(&app, "owner@acme.test", Role::Owner).await;
        admin_user(&app, "helper@acme.test", Role::Admin).await;
        let limit = usize::try_from(health::DISABLE_AFTER_FAILURES).expect("small");
        let (receiver, url) = Receiver::start(limit).await;
        let created = create_webhook(&app, &url, json!(["key.created"])).await;
        receiver.set_secret(created["secret"].as_str().expect("secret"));
        let id = created["id"].as_str().expect("id").to_owned();
        let su = app.create_service_user("ci-bot").await;
        for n in 0..limit {
            app.create_key(&su, json!({"name": format!("k{n}")})).await;
            let report = app.deliver_webhooks().await;
            assert_eq!(report.retrying + report.failed, 1, "one attempt a round: {report:?}");
            app.clock.advance(time::Duration::hours(1));
        }
        let disabled = endpoint(&app, &id).await;
        assert!(disabled["disabled_at"].is_string(), "{disabled}");
        assert_eq!(disabled["consecutive_failures"], health::DISABLE_AFTER_FAILURES);
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'webhook.disable'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 1);

        // Disabled: no new deliveries are written, nothing is tried, no test event.
        let pending = deliveries(&app, &id).await.len();
        app.create_key(&su, json!({"name": "after"})).await;
        assert_eq!(deliveries(&app, &id).await.len(), pending);
        assert_eq!(app.deliver_webhooks().await.retrying, 0);
        let res = app.post(&format!("/api/v1/tenants/acme/webhooks/{id}/test"), &json!({})).await;
        expect_error(res, StatusCode::CONFLICT, "conflict").await;

        // The owner (not the admin) is told, once.
        app.tick().await;
        let mails: Vec<String> = sink.messages().iter().map(|m| decoded(m)).filter(|m| m.contains("webhook")).collect();
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(mails[0].contains("X-Envelope-To: owner@acme.test"), "{}", mails[0]);
        assert!(mails[0].contains(&id) && mails[0].contains("failed deliveries in a row"));
        assert!(!mails[0].contains(created["secret"].as_str().expect("secret")), "no secret in the email");

        // Enabled again, it delivers what was waiting (the receiver now answers).
        let res = app.client.post(app.url(&format!("/api/v1/tenants/acme/webhooks/{id}/enable"))).bearer_auth(&app.admin_key).send().await.expect("enable");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let report = app.deliver_webhooks().await;
        assert!(report.delivered >= 1, "{report:?}");
        let enabled = endpoint(&app, &id).await;
        assert!(enabled["disabled_at"].is_null() && enabled["consecutive_failures"] == 0, "{enabled}");
    }

    async fn test_events_are_spaced_and_endpoints_capped(app: TestApp) {
        let sink = SmtpSink::start();
        let app = with_smtp(app, &sink, &[("KEYSMITH_MAX_WEBHOOKS_PER_TENANT", "3".to_owned())]).await;
        let (_receiver, url) = Receiver::start(0).await;
        let id = create_webhook(&app, &url, json!(["key.created"])).await["id"].as_str().expect("id").to_owned();
        let mut burst = JoinSet::new();
        for _ in 0..10 {
            let (client, url, key) = (app.client.clone(), app.url(&format!("/api/v1/tenants/acme/webhooks/{id}/test")), app.admin_key.clone());
            burst.spawn(async move { client.post(url).bearer_auth(key).json(&json!({})).send().await.expect("test").status() });
        }
        let statuses = burst.join_all().await;
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 9, "{statuses:?}");
        assert_eq!(deliveries(&app, &id).await.len(), 1, "one test event queued");
        app.clock.advance(health::TEST_EVENT_SPACING);
        let res = app.post(&format!("/api/v1/tenants/acme/webhooks/{id}/test"), &json!({})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);

        // Three endpoints at most, even when created all at once.
        let mut burst = JoinSet::new();
        for _ in 0..6 {
            let (client, api, key, url) = (app.client.clone(), app.url("/api/v1/tenants/acme/webhooks"), app.admin_key.clone(), url.clone());
            burst.spawn(async move { client.post(api).bearer_auth(key).json(&json!({"url": url, "events": ["key.created"]})).send().await.expect("create").status() });
        }
        let statuses = burst.join_all().await;
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 2, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY).count(), 4, "{statuses:?}");
        assert_eq!(app.count("webhook_endpoints").await, 3);
    }
}
