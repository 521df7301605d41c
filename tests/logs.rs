//! No key secret in the logs of a full lifecycle, at TRACE level.
//!
//! Its own test binary because it installs a process-wide subscriber: a
//! per-thread one misses events whose callsites other test threads registered first.

#[expect(
    dead_code,
    reason = "the shared helpers serve the api binary; this one uses a few"
)]
#[path = "api/helpers.rs"]
mod helpers;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use helpers::{Engine, TestApp, expect_json, secret_of};
use reqwest::StatusCode;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn lifecycle_logs_hold_no_secret(engine: Engine, capture: &Capture) {
    let app = TestApp::spawn(engine)
        .await
        .allowing_private_webhooks()
        .await;
    // A webhook receiving every event: its signing secret must not be logged either.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_url = format!("http://{}/hook", receiver.local_addr().expect("addr"));
    tokio::spawn(async move {
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(|| async { StatusCode::NO_CONTENT }),
        );
        axum::serve(receiver, router).await.expect("receiver");
    });
    let events = json!(["key.created", "key.rotated", "key.revoked", "key.expired"]);
    let hook = app
        .post(
            "/api/v1/tenants/acme/webhooks",
            &json!({"url": hook_url, "events": events}),
        )
        .await;
    let hook = expect_json(hook, StatusCode::CREATED).await;
    let hook_secret = hook["secret"].as_str().expect("secret").to_owned();
    let su = app.create_service_user("ci-bot").await;
    let created = app
        .create_key(&su, json!({"allowed_tools": ["whoami"]}))
        .await;
    let key = created["key"].as_str().expect("key").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(app.verify(&key, Some("whoami")).await["code"], "valid");
    assert_eq!(
        app.verify(&key, Some("other")).await["code"],
        "tool_not_allowed"
    );
    let rotation = expect_json(app.rotate_key(&id).await, StatusCode::CREATED).await;
    let new_key = rotation["new"]["key"].as_str().expect("key").to_owned();
    app.revoke_key(rotation["new"]["id"].as_str().expect("id"), "done")
        .await;
    assert_eq!(app.verify_code(&new_key).await, "revoked");
    app.clock.advance(time::Duration::days(8));
    app.tick_and_deliver().await;
    let admin_key = app.admin_key.clone();
    app.stop().await;

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        logs.contains(&id),
        "the capture is real: it holds key ids ({} bytes)",
        logs.len()
    );
    for secret in [&key, &new_key, &admin_key] {
        assert!(
            !logs.contains(&secret_of(secret)),
            "a key secret appeared in the logs"
        );
    }
    assert!(logs.contains("webhook delivered"), "the webhooks were sent");
    assert!(
        !logs.contains(&hook_secret[6..]),
        "a webhook secret appeared in the logs"
    );
}

/// The text between `before` and the next `"` or `<`.
fn between<'a>(html: &'a str, before: &str) -> &'a str {
    let (_, rest) = html.split_once(before).expect("on the page");
    rest.split(['"', '<']).next().expect("value")
}

/// Session ids set by a response (the cookie value, what a thief replays).
fn session_ids(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("keysmith="))
        .filter_map(|c| c.split(';').next().map(str::to_owned))
        .filter(|id| !id.is_empty())
        .collect()
}

/// Sign-in, a refused guess, TOTP enrolment and both second steps: no
/// password, session id, TOTP secret or recovery code in the logs.
async fn admin_logs_hold_no_secret(engine: Engine, capture: &Capture) {
    use keysmith::domain::{Email, people::accounts, people::totp::TotpSecret};
    let app = TestApp::spawn(engine).await;
    let password = "a password nobody logs";
    let guess = "a wrong guess nobody logs";
    accounts::create(
        app.state.pool(),
        &Email::parse("a@acme.test").expect("email"),
        accounts::Password::parse(password.into()).expect("password"),
        false,
        app.now(),
    )
    .await
    .expect("account");
    let browser = || {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    };
    let sign_in = |client: reqwest::Client, password: &'static str| {
        let url = app.url("/admin/sign-in");
        async move {
            client
                .post(url)
                .form(&[("email", "a@acme.test"), ("password", password)])
                .send()
                .await
                .expect("sign in")
        }
    };
    let mut secrets: Vec<String> = vec![password.into(), guess.into()];
    assert_eq!(
        sign_in(browser(), guess).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let client = browser();
    secrets.extend(session_ids(&sign_in(client.clone(), password).await));
    let page = client
        .get(app.url("/admin/account/totp"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let secret =
        TotpSecret::from_base32(between(&page, "<code id=\"totp-secret\">")).expect("secret");
    let code = secret.code_at(app.now()).expect("code");
    let form = [
        ("csrf", between(&page, "name=\"csrf\" value=\"")),
        ("code", code.as_str()),
    ];
    let page = client
        .post(app.url("/admin/account/totp"))
        .form(&form)
        .send()
        .await
        .expect("enrol")
        .text()
        .await
        .expect("html");
    let codes: Vec<String> = page
        .split("<code class=\"recovery-code\">")
        .skip(1)
        .map(|c| between(c, "").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    app.clock.advance(time::Duration::seconds(30));
    for second in [secret.code_at(app.now()).expect("code"), codes[0].clone()] {
        let client = browser();
        secrets.extend(session_ids(&sign_in(client.clone(), password).await));
        let res = client
            .post(app.url("/admin/sign-in/totp"))
            .form(&[("code", second.as_str())])
            .send()
            .await
            .expect("code");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        secrets.extend(session_ids(&res));
    }
    secrets.push(secret.base32());
    secrets.push(code);
    secrets.extend(codes);
    app.stop().await;

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("sign-in refused") && logs.contains("/admin/sign-in/totp"),
        "the capture is real"
    );
    for secret in &secrets {
        if let Some(line) = logged_at(&logs, secret) {
            // The line shows where, with the secret itself masked: a failing
            // test must not copy it into CI output either.
            panic!(
                "an admin secret ({} chars) appeared in the logs: {}",
                secret.len(),
                line.replace(secret.as_str(), "[SECRET]")
            );
        }
    }
}

/// The log line where `secret` occurs, if it does. A secret of digits only
/// (a 6-digit TOTP code) counts only as a number of its own: inside a longer
/// run of digits (a timestamp, a duration in ns) it is a coincidence. (This
/// test failed once in CI on 2026-12-02 and passed on rerun; which secret
/// matched was not shown then, so the message now prints the line.)
fn logged_at<'a>(logs: &'a str, secret: &str) -> Option<&'a str> {
    let digits_only = secret.bytes().all(|b| b.is_ascii_digit());
    logs.match_indices(secret).find_map(|(at, _)| {
        let end = at + secret.len();
        let digit_before = logs[..at]
            .bytes()
            .next_back()
            .is_some_and(|b| b.is_ascii_digit());
        let digit_after = logs[end..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit());
        if digits_only && (digit_before || digit_after) {
            return None;
        }
        // The log line it is on.
        let from = logs[..at].rfind('\n').map_or(0, |i| i + 1);
        let to = logs[end..].find('\n').map_or(logs.len(), |i| end + i);
        Some(&logs[from..to])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_logs_hold_no_secret_on_both_engines() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        // Everything at TRACE, except the test's own browser-like client's
        // cookie jar, which logs the cookies it receives: that is the
        // client's side, not the server's logs.
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,cookie_store=off"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    lifecycle_logs_hold_no_secret(Engine::Sqlite, &capture).await;
    lifecycle_logs_hold_no_secret(Engine::Postgres, &capture).await;
    admin_logs_hold_no_secret(Engine::Sqlite, &capture).await;
    admin_logs_hold_no_secret(Engine::Postgres, &capture).await;
}

#[test]
fn a_secret_is_found_in_its_line_and_a_code_only_as_a_number_of_its_own() {
    let logs = "first line\nelapsed=1234567 ns\ncode 123456 refused\n";
    assert_eq!(logged_at(logs, "123456"), Some("code 123456 refused"));
    assert_eq!(logged_at("elapsed=1234567 ns", "123456"), None);
    assert_eq!(
        logged_at("sid=abcdef12 set", "abcdef1"),
        Some("sid=abcdef12 set")
    );
    assert_eq!(logged_at(logs, "absent"), None);
}
