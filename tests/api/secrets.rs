//! No plaintext secret in the database or the logs.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{Engine, TestApp, expect_json},
};

/// The secret part of a key (after the key id): what must never be stored or logged.
fn secret_of(key: &str) -> &str {
    let (_, tail) = key.rsplit_once('_').expect("key shape");
    &tail[..22]
}

both_engines! {
    async fn database_dump_holds_no_plaintext_secret(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let mut plaintexts = vec![app.admin_key.clone()];
        for _ in 0..3 {
            plaintexts.push(app.create_key(&su, json!({})).await["key"].as_str().expect("key").to_owned());
        }
        let first_id = plaintexts[1].split('_').nth(1).expect("id").to_owned();
        let rotation = expect_json(app.rotate_key(&first_id).await, StatusCode::CREATED).await;
        plaintexts.push(rotation["new"]["key"].as_str().expect("key").to_owned());
        // SQLite: checkpoint so everything is in the main file as well as the WAL.
        let _ = sqlx::query("PRAGMA wal_checkpoint(FULL)").execute(app.state.pool()).await;

        let dump = app.db.dump();
        assert!(dump.contains(&first_id), "the dump is real: it holds key ids");
        for key in &plaintexts {
            assert!(!dump.contains(key.as_str()), "full key found in the database dump");
            assert!(!dump.contains(secret_of(key)), "key secret found in the database dump");
        }
    }
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

async fn lifecycle_logs_hold_no_secret(engine: Engine) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded: the server's tasks run on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

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

#[tokio::test]
async fn lifecycle_logs_hold_no_secret_sqlite() {
    lifecycle_logs_hold_no_secret(Engine::Sqlite).await;
}

#[tokio::test]
async fn lifecycle_logs_hold_no_secret_postgres() {
    lifecycle_logs_hold_no_secret(Engine::Postgres).await;
}
