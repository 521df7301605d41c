//! No plaintext secret in the database (the logs: `tests/logs.rs`).

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{expect_json, secret_of},
};

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
            assert!(!dump.contains(&secret_of(key)), "key secret found in the database dump");
        }
    }
}
