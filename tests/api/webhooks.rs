//! Signed webhooks against a real HTTP receiver that checks every signature.

use std::sync::{Arc, Mutex};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post};
use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// A receiver that verifies `Keysmith-Signature` with the endpoint's secret
/// and records what it accepted; it answers 500 to the first `fail_first` calls.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    inner: Arc<Mutex<ReceiverState>>,
}

#[derive(Default)]
struct ReceiverState {
    secret: String,
    fail_first: usize,
    calls: usize,
    /// `(t, event)` of each correctly signed call answered 2xx.
    accepted: Vec<(i64, Value)>,
    bad_signatures: usize,
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> (Self, String) {
        let receiver = Self::default();
        receiver.inner.lock().expect("lock").fail_first = fail_first;
        let router = axum::Router::new()
            .route("/hook", post(receive))
            .route(
                "/moved",
                post(|| async { axum::response::Redirect::temporary("/hook") }),
            )
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("receiver") });
        (receiver, format!("http://{addr}/hook"))
    }

    pub(crate) fn set_secret(&self, secret: &str) {
        self.inner.lock().expect("lock").secret = secret.to_owned();
    }

    pub(crate) fn accepted(&self) -> Vec<(i64, Value)> {
        self.inner.lock().expect("lock").accepted.clone()
    }

    fn calls(&self) -> usize {
        self.inner.lock().expect("lock").calls
    }
}

/// What a receiver should do: recompute HMAC-SHA-256(secret, "t.body") and
/// accept the event if any `v1` matches (during a secret rotation's overlap
/// there is one per secret); a real receiver also rejects `t` older than 5
/// minutes.
fn signature_valid(secret: &str, header: &str, body: &[u8]) -> Option<i64> {
    let mut t = None;
    let mut v1s = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1s.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let t = t?;
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    v1s.iter()
        .any(|v1| mac.clone().verify_slice(v1).is_ok())
        .then_some(t)
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut state = receiver.inner.lock().expect("lock");
    state.calls += 1;
    let header = headers
        .get("keysmith-signature")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let Some(t) = signature_valid(&state.secret, header, &body) else {
        state.bad_signatures += 1;
        return StatusCode::BAD_REQUEST;
    };
    if state.calls <= state.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let event: Value = serde_json::from_slice(&body).expect("JSON body");
    state.accepted.push((t, event));
    StatusCode::NO_CONTENT
}

/// Creates a webhook; the answer carries its secret, so no cache may keep it.
pub(crate) async fn create_webhook(app: &TestApp, url: &str, events: Value) -> Value {
    let res = app
        .post(
            "/api/v1/tenants/acme/webhooks",
            &json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    expect_json(res, StatusCode::CREATED).await
}

pub(crate) async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/api/v1/tenants/acme/webhooks/{id}/deliveries"))
        .await;
    expect_json(res, StatusCode::OK).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

both_engines! {
    async fn key_created_is_delivered_signed_and_secret_is_shown_once(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(0).await;
        let created = create_webhook(&app, &url, json!(["key.created", "key.revoked"])).await;
        let secret = created["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with("whsec_"));
        receiver.set_secret(&secret);
        let id = created["id"].as_str().expect("id");

        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"name": "deploy"})).await;
        app.rotate_key(key["id"].as_str().expect("id")).await;
        app.tick_and_deliver().await;

        let accepted = receiver.accepted();
        assert_eq!(accepted.len(), 1, "only key.created is subscribed: {accepted:?}");
        let (t, event) = &accepted[0];
        assert_eq!(*t, app.now().unix_timestamp());
        assert_eq!(event["type"], "key.created");
        assert_eq!(event["tenant"], "acme");
        assert_eq!(event["data"]["key_id"], key["id"]);
        assert!(event["id"].as_str().is_some_and(|id| id.starts_with("evt_")));
        assert!(!event.to_string().contains(&secret));
        assert!(!event.to_string().contains(key["key"].as_str().expect("key")));

        let history = deliveries(&app, id).await;
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["status"], "delivered");
        assert_eq!(history[0]["last_status"], 204);

        // The secret is in no later response and nowhere in the database.
        let list = app.get("/api/v1/tenants/acme/webhooks").await.text().await.expect("body");
        assert!(list.contains(id) && !list.contains(&secret), "{list}");
        assert!(!format!("{history:?}").contains(&secret));
        assert!(!app.db.dump().contains(&secret["whsec_".len()..]), "secret stored sealed");

        // The test event reaches the same receiver, signed too.
        let res = app.post(&format!("/api/v1/tenants/acme/webhooks/{id}/test"), &json!({})).await;
        expect_json(res, StatusCode::ACCEPTED).await;
        app.tick_and_deliver().await;
        let accepted = receiver.accepted();
        assert_eq!(accepted.len(), 2);
        assert_eq!(accepted[1].1["type"], "webhook.test");
        assert_eq!(receiver.inner.lock().expect("lock").bad_signatures, 0);
    }

    async fn a_500_is_retried_after_backoff_and_delivered_once(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(1).await;
        let created = create_webhook(&app, &url, json!(["key.revoked"])).await;
        receiver.set_secret(created["secret"].as_str().expect("secret"));
        let id = created["id"].as_str().expect("id");
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"name": "deploy"})).await;
        expect_json(app.revoke_key(key["id"].as_str().expect("id"), "leaked").await, StatusCode::OK).await;

        app.tick_and_deliver().await;
        assert_eq!(receiver.calls(), 1);
        assert!(receiver.accepted().is_empty());
        let history = deliveries(&app, id).await;
        assert_eq!(history[0]["status"], "pending");
        assert_eq!(history[0]["last_status"], 500);
        assert_eq!(history[0]["attempts"], 1);

        app.tick_and_deliver().await;
        assert_eq!(receiver.calls(), 1, "not before the backoff");
        app.clock.advance(Duration::seconds(31));
        app.tick_and_deliver().await;
        app.tick_and_deliver().await;
        let accepted = receiver.accepted();
        assert_eq!(accepted.len(), 1, "delivered exactly once");
        assert_eq!(accepted[0].1["type"], "key.revoked");
        assert_eq!(accepted[0].1["data"]["revoked_reason"], "leaked");
        let history = deliveries(&app, id).await;
        assert_eq!(history[0]["status"], "delivered");
        assert_eq!(history[0]["attempts"], 2);
        assert_eq!(history[0]["last_status"], 204);
    }

    async fn refused_targets_and_bad_input_write_nothing(app: TestApp) {
        let bad = [
            json!({"url": "http://10.0.0.1/hook", "events": ["key.created"]}),
            json!({"url": "https://10.0.0.1/hook", "events": ["key.created"]}),
            json!({"url": "https://[::ffff:127.0.0.1]/hook", "events": ["key.created"]}),
            json!({"url": "https://169.254.169.254/latest", "events": ["key.created"]}),
            // Loopback in every spelling is refused unless the operator opts in.
            json!({"url": "http://127.0.0.1:8080/hook", "events": ["key.created"]}),
            json!({"url": "http://127.1/hook", "events": ["key.created"]}),
            json!({"url": "http://2130706433/hook", "events": ["key.created"]}),
            json!({"url": "http://0x7f000001/hook", "events": ["key.created"]}),
            json!({"url": "http://[::1]/hook", "events": ["key.created"]}),
            json!({"url": "http://localhost:9/hook", "events": ["key.created"]}),
            json!({"url": "https://[::7f00:1]/hook", "events": ["key.created"]}),
            json!({"url": "https://[64:ff9b::7f00:1]/hook", "events": ["key.created"]}),
            json!({"url": "https://[2002:7f00:1::]/hook", "events": ["key.created"]}),
            json!({"url": "https://[fec0::1]/hook", "events": ["key.created"]}),
            json!({"url": "https://240.0.0.1/hook", "events": ["key.created"]}),
            json!({"url": "https://198.18.0.1/hook", "events": ["key.created"]}),
            json!({"url": "https://192.0.0.1/hook", "events": ["key.created"]}),
            json!({"url": "http://hooks.example.com/x", "events": ["key.created"]}),
            json!({"url": "not a url", "events": ["key.created"]}),
            json!({"url": "https://hooks.example.com/x", "events": []}),
            json!({"url": "https://hooks.example.com/x", "events": ["key.stolen"]}),
        ];
        let audit_before = app.count("audit_events").await;
        for body in bad {
            let res = app.post("/api/v1/tenants/acme/webhooks", &body).await;
            expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        }
        assert_eq!(app.count("webhook_endpoints").await, 0);
        assert_eq!(app.count("audit_events").await, audit_before);
    }

    async fn a_target_refused_at_delivery_gets_nothing(app: TestApp) {
        // Allowed when created (operator opt-in), refused once the opt-in is gone.
        let clock = app.clock.clone();
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_WEBHOOK_ALLOW_PRIVATE", "1".into())], Some(clock)).await;
        let created = create_webhook(&app, "https://10.255.255.1:9/hook", json!(["key.created"])).await;
        let id = created["id"].as_str().expect("id").to_owned();
        let clock = app.clock.clone();
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[], Some(clock)).await;
        let su = app.create_service_user("ci-bot").await;
        app.create_key(&su, json!({"name": "deploy"})).await;
        app.tick_and_deliver().await;
        // The restart's management key and the test's key: two events, neither
        // sent. The first was refused; the refusal paused the endpoint, so
        // the second waits for the pause, untried.
        let history = deliveries(&app, &id).await;
        assert_eq!(history.len(), 2);
        for delivery in &history {
            assert_eq!(delivery["status"], "pending");
            assert_eq!(delivery["last_status"], Value::Null, "no request was made");
        }
        let (newer, older) = (&history[0], &history[1]);
        assert!(older["last_error"].as_str().is_some_and(|e| e.contains("private")), "{history:?}");
        assert_eq!((newer["attempts"].as_i64(), newer["last_error"].as_str()), (Some(0), None), "{history:?}");
    }

    async fn another_tenants_webhook_is_not_found(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (_receiver, url) = Receiver::start(0).await;
        let created = create_webhook(&app, &url, json!(["key.created"])).await;
        let id = created["id"].as_str().expect("id");
        let other = app.create_tenant("globex").await;
        let other_key = app.management_key(&other).await;
        for path in [format!("/api/v1/tenants/globex/webhooks/{id}/deliveries")] {
            expect_error(app.get_as(&other_key, &path).await, StatusCode::NOT_FOUND, "not_found").await;
        }
        let res = app.post_as(&other_key, &format!("/api/v1/tenants/globex/webhooks/{id}/test"), &json!({})).await;
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = app.client.delete(app.url(&format!("/api/v1/tenants/globex/webhooks/{id}"))).bearer_auth(&other_key).send().await.expect("request");
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        expect_error(app.get_as(&other_key, "/api/v1/tenants/acme/webhooks").await, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(app.count("webhook_endpoints").await, 1);

        let res = app.client.delete(app.url(&format!("/api/v1/tenants/acme/webhooks/{id}"))).bearer_auth(&app.admin_key).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.count("webhook_endpoints").await, 0);
    }
    async fn expiring_expired_and_disabled_are_delivered(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(0).await;
        let events = json!(["key.expiring", "key.expired", "service_user.disabled"]);
        let created = create_webhook(&app, &url, events).await;
        receiver.set_secret(created["secret"].as_str().expect("secret"));
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"expires_in_days": 40})).await;
        let expires = app.now() + Duration::days(40);

        app.clock.set(expires - Duration::days(30) + Duration::hours(1));
        app.tick_and_deliver().await;
        app.tick_and_deliver().await;
        app.clock.set(expires + Duration::hours(1));
        app.tick_and_deliver().await;
        let res = app.post(&format!("/api/v1/tenants/acme/service-users/{su}/disable"), &json!({})).await;
        assert!(res.status().is_success(), "{}", res.status());
        app.tick_and_deliver().await;

        let types: Vec<String> = receiver.accepted().iter().map(|(_, e)| e["type"].as_str().expect("type").to_owned()).collect();
        assert_eq!(types, ["key.expiring", "key.expired", "service_user.disabled"]);
        let accepted = receiver.accepted();
        assert_eq!(accepted[0].1["data"]["key_id"], key["id"]);
        assert_eq!(accepted[0].1["data"]["days_left"], 30);
        assert_eq!(accepted[1].1["data"]["status"], "expired");
        assert_eq!(accepted[2].1["data"]["service_user_id"], su.as_str());
    }
    async fn a_redirect_is_not_followed(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(0).await;
        let moved = url.replace("/hook", "/moved");
        let created = create_webhook(&app, &moved, json!(["key.created"])).await;
        receiver.set_secret(created["secret"].as_str().expect("secret"));
        let su = app.create_service_user("ci-bot").await;
        app.create_key(&su, json!({"name": "deploy"})).await;
        app.tick_and_deliver().await;
        assert_eq!(receiver.calls(), 0, "the redirect's target was never called");
        let history = deliveries(&app, created["id"].as_str().expect("id")).await;
        assert_eq!(history[0]["status"], "pending");
        assert_eq!(history[0]["last_status"], 307);
    }
}

/// What versions before `s2` stored: `v<version>:<nonce>:<hex(plain XOR
/// HMAC(pepper, context ‖ row ‖ nonce))>`, written here independently of the
/// server's code.
fn legacy_sealed(app: &TestApp, context: &str, row_id: &str, plain: &[u8]) -> String {
    let peppers = &app.state.peppers;
    let nonce = "legacyNonce0123456789a";
    let pad = peppers
        .digest(
            peppers.current_version(),
            format!("{context}\0{row_id}\0{nonce}").as_bytes(),
        )
        .expect("pepper");
    let sealed: Vec<u8> = plain.iter().zip(pad).map(|(s, p)| s ^ p).collect();
    format!(
        "v{}:{nonce}:{}",
        peppers.current_version(),
        hex::encode(sealed)
    )
}

async fn set_column(app: &TestApp, table: &str, column: &str, id: &str, value: &str) {
    sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
        .bind(value)
        .bind(id)
        .execute(app.state.pool())
        .await
        .expect("update");
}

async fn column(app: &TestApp, table: &str, column: &str, id: &str) -> String {
    let (value,): (String,) =
        sqlx::query_as(&format!("SELECT {column} FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_one(app.state.pool())
            .await
            .expect("select");
    value
}

both_engines! {
    async fn legacy_sealed_secrets_are_resealed_at_start_and_never_read_otherwise(app: TestApp) {
        use keysmith::domain::{people::totp::{self, TotpSecret}, events::webhooks::WebhookSecret};
        // The RFC 6238 test secret, in base32.
        const TOTP_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(0).await;
        let created = create_webhook(&app, &url, json!(["key.revoked"])).await;
        let secret = created["secret"].as_str().expect("secret");
        receiver.set_secret(secret);
        let id = created["id"].as_str().expect("id").to_owned();
        let old = legacy_sealed(&app, "keysmith webhook secret v1", &id, &secret.as_bytes()["whsec_".len()..]);
        set_column(&app, "webhook_endpoints", "secret_sealed", &id, &old).await;
        let user = crate::admin::account(&app, "old@acme.test", false).await;
        let old_totp = legacy_sealed(&app, "keysmith totp secret v1", user.id.as_str(), b"12345678901234567890");
        set_column(&app, "admin_users", "totp_secret", user.id.as_str(), &old_totp).await;
        set_column(&app, "admin_users", "totp_pending", user.id.as_str(), &old_totp).await;

        // A legacy value is never read on the way, only re-sealed at start;
        // nor is one written by hand (`v1:x:` opened to an empty secret).
        let endpoint = keysmith::domain::WebhookEndpointId::new(id.as_str());
        let peppers = &app.state.peppers;
        assert!(WebhookSecret::open(peppers, &endpoint, &old).is_err(), "legacy refused before the restart");
        let forged = create_webhook(&app, &url, json!(["key.revoked"])).await;
        let forged_id = forged["id"].as_str().expect("id").to_owned();
        set_column(&app, "webhook_endpoints", "secret_sealed", &forged_id, "v1:x:").await;

        let app = app.allowing_private_webhooks().await;
        let forged_endpoint = keysmith::domain::WebhookEndpointId::new(forged_id.as_str());
        assert_eq!(column(&app, "webhook_endpoints", "secret_sealed", &forged_id).await, "v1:x:", "left as it was, and logged");
        assert!(WebhookSecret::open(&app.state.peppers, &forged_endpoint, "v1:x:").is_err());
        for (table, col, row) in [
            ("webhook_endpoints", "secret_sealed", id.as_str()),
            ("admin_users", "totp_secret", user.id.as_str()),
            ("admin_users", "totp_pending", user.id.as_str()),
        ] {
            let value = column(&app, table, col, row).await;
            assert!(value.starts_with("s2:"), "{table}.{col} re-sealed at start: {value}");
        }
        let res = app.post(&format!("/api/v1/tenants/acme/webhooks/{id}/test"), &json!({})).await;
        expect_json(res, StatusCode::ACCEPTED).await;
        app.tick_and_deliver().await;
        assert_eq!(receiver.accepted().len(), 1, "signed with the same secret after re-sealing");
        assert_eq!(receiver.inner.lock().expect("lock").bad_signatures, 0);

        let peppers = &app.state.peppers;
        let pending = totp::start_enrolment(app.state.pool(), peppers, &user.id).await.expect("pending");
        assert_eq!(pending.base32(), TOTP_BASE32);
        let code = TotpSecret::from_base32(TOTP_BASE32).expect("secret").code_at(app.now()).expect("code");
        assert!(totp::verify(app.state.pool(), peppers, &user.id, &code, app.now()).await.expect("verify"));

        // A sealed value moved to another row no longer opens.
        let moved = column(&app, "webhook_endpoints", "secret_sealed", &id).await;
        let other = crate::admin::account(&app, "other@acme.test", false).await;
        set_column(&app, "admin_users", "totp_secret", other.id.as_str(), &moved).await;
        assert!(totp::verify(app.state.pool(), peppers, &other.id, &code, app.now()).await.is_err());
    }
}

/// Delivery from the real `keysmith serve`, started with every proxy
/// variable pointing at a listener that counts who connects: the receiver
/// gets the event straight, the "proxy" sees nothing. (A proxy connects by
/// name, wherever DNS says next, so the address check would be moot.)
async fn delivery_ignores_proxy_variables(engine: crate::helpers::Engine) {
    use std::process::{Command, Stdio};
    let app = TestApp::spawn(engine)
        .await
        .allowing_private_webhooks()
        .await;
    let (receiver, url) = Receiver::start(0).await;
    let created = create_webhook(&app, &url, json!(["key.revoked"])).await;
    receiver.set_secret(created["secret"].as_str().expect("secret"));
    let id = created["id"].as_str().expect("id");
    let res = app
        .post(
            &format!("/api/v1/tenants/acme/webhooks/{id}/test"),
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::ACCEPTED).await;
    let db = app.stop().await;

    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let proxied = Arc::new(Mutex::new(0usize));
    let counter = proxied.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = proxy.accept().await {
            *counter.lock().expect("lock") += 1;
        }
    });
    let mut server = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("serve")
        .env("KEYSMITH_DATABASE_URL", &db.url)
        .env("KEYSMITH_DATA_DIR", db.dir.path())
        .env("KEYSMITH_PEPPER_FILE", db.dir.path().join("pepper"))
        .env("KEYSMITH_BIND", "127.0.0.1:0")
        .env("KEYSMITH_LOG", "warn")
        .env("KEYSMITH_SCHEDULER_INTERVAL_SECS", "1")
        .env("KEYSMITH_WEBHOOK_ALLOW_PRIVATE", "1")
        .envs(
            [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "http_proxy",
                "https_proxy",
                "all_proxy",
            ]
            .map(|name| (name, proxy_url.as_str())),
        )
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run keysmith serve");
    // The server ticks at start and every second after; bounded wait.
    for _ in 0..300 {
        if !receiver.accepted().is_empty() || *proxied.lock().expect("lock") > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        *proxied.lock().expect("lock"),
        0,
        "nothing went through the proxy"
    );
    assert_eq!(
        receiver.accepted().len(),
        1,
        "the receiver got the event directly"
    );
    drop(db);
}

#[tokio::test]
async fn webhook_delivery_ignores_proxy_variables_sqlite() {
    delivery_ignores_proxy_variables(crate::helpers::Engine::Sqlite).await;
}

#[tokio::test]
async fn webhook_delivery_ignores_proxy_variables_postgres() {
    delivery_ignores_proxy_variables(crate::helpers::Engine::Postgres).await;
}

both_engines! {
    async fn a_rotated_secret_signs_beside_the_previous_one_until_the_overlap_ends(app: TestApp) {
        let app = app.allowing_private_webhooks().await;
        let (receiver, url) = Receiver::start(0).await;
        let created = create_webhook(&app, &url, json!(["key.created"])).await;
        let (id, old) = (created["id"].as_str().expect("id").to_owned(), created["secret"].as_str().expect("secret").to_owned());
        let path = format!("/api/v1/tenants/acme/webhooks/{id}/rotate-secret");
        let rotate = |body: Value| {
            let request = app.client.post(app.url(&path)).bearer_auth(&app.admin_key).json(&body);
            async move { request.send().await.expect("rotate") }
        };
        for bad in [json!({"overlap_hours": -1}), json!({"overlap_hours": 73}), json!({"overlap": 1})] {
            expect_error(rotate(bad).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        }
        let res = rotate(json!({"overlap_hours": 2})).await;
        assert_eq!(res.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        let rotated = expect_json(res, StatusCode::CREATED).await;
        let new = rotated["secret"].as_str().expect("secret").to_owned();
        assert!(new.starts_with("whsec_") && new != old);
        assert!(rotated["previous_signs_until"].is_string(), "{rotated}");
        assert!(!app.db.dump().contains(&new["whsec_".len()..]), "sealed at rest");

        // During the overlap a receiver holding either secret accepts.
        let su = app.create_service_user("ci-bot").await;
        for secret in [&old, &new] {
            receiver.set_secret(secret);
            app.create_key(&su, json!({"name": "k"})).await;
            app.deliver_webhooks().await;
        }
        assert_eq!(receiver.accepted().len(), 2);
        assert_eq!(receiver.inner.lock().expect("lock").bad_signatures, 0);
        // After it, only the new one signs.
        app.clock.advance(Duration::hours(2) + Duration::seconds(1));
        receiver.set_secret(&old);
        app.create_key(&su, json!({"name": "late"})).await;
        app.deliver_webhooks().await;
        assert_eq!(receiver.inner.lock().expect("lock").bad_signatures, 1, "the old secret no longer signs");

        // Overlap 0: the previous secret stops at once (a leaked secret).
        let rotated = expect_json(rotate(json!({"overlap_hours": 0})).await, StatusCode::CREATED).await;
        assert!(rotated["previous_signs_until"].is_null());
        receiver.set_secret(&new);
        app.clock.advance(Duration::minutes(5));
        app.create_key(&su, json!({"name": "after"})).await;
        app.deliver_webhooks().await;
        assert!(receiver.inner.lock().expect("lock").bad_signatures >= 2, "the secret just replaced signs nothing");
        // Another tenant's key cannot rotate it.
        let globex = app.create_tenant("globex").await;
        let globex_key = app.management_key(&globex).await;
        let res = app.post_as(&globex_key, &format!("/api/v1/tenants/acme/webhooks/{id}/rotate-secret"), &json!({})).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'webhook.rotate_secret'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 2);
    }
}
