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

use helpers::{Engine, TestApp, expect_json};
use reqwest::StatusCode;
use serde_json::json;

fn secret_of(key: &str) -> &str {
    let (_, tail) = key.rsplit_once('_').expect("key shape");
    &tail[..22]
}

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
    let app = TestApp::spawn(engine).await;
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
    app.tick().await;
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
            !logs.contains(secret_of(secret)),
            "a key secret appeared in the logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_logs_hold_no_secret_on_both_engines() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    lifecycle_logs_hold_no_secret(Engine::Sqlite, &capture).await;
    lifecycle_logs_hold_no_secret(Engine::Postgres, &capture).await;
}
