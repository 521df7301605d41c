//! `keysmith backup` while the server writes, then `keysmith restore` into a
//! fresh place and a server on it that verifies the keys; what is not a
//! backup, a database in the way and PostgreSQL are refused with what to do.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;
use tokio::process::Command;

use crate::{
    child::Running,
    helpers::{Engine, TestApp, expect_json},
};

async fn keysmith(args: &[&str], database_url: &str, data_dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .env("KEYSMITH_DATABASE_URL", database_url)
        .env("KEYSMITH_DATA_DIR", data_dir)
        .env("KEYSMITH_PEPPER_FILE", data_dir.join("pepper"))
        .output()
        .await
        .expect("run keysmith")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_backup_made_while_serving_restores_to_a_server_that_verifies_the_keys() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let su = app.create_service_user("ci-bot").await;
    let key = app.create_key(&su, json!({})).await;
    let plaintext = key["key"].as_str().expect("key").to_owned();

    // The server keeps minting keys while the backup runs.
    let writer = {
        let (client, url, admin, su) = (
            app.client.clone(),
            app.url("/api/v1/tenants/acme/keys"),
            app.admin_key.clone(),
            su.clone(),
        );
        tokio::spawn(async move {
            for i in 0..40 {
                let res = client
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&json!({"service_user_id": su, "name": format!("busy-{i}")}))
                    .send()
                    .await
                    .expect("create");
                assert_eq!(res.status(), StatusCode::CREATED);
            }
        })
    };
    let backups = tempfile::tempdir().expect("tmp");
    let file = backups.path().join("keysmith-backup.db");
    let out = keysmith(
        &["backup", file.to_str().expect("utf-8")],
        &app.db.url,
        app.db.dir.path(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the pepper is not in it"),
        "{}",
        text(&out)
    );
    writer.await.expect("writer");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file)
            .expect("backup")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // A new home: the backup and the pepper it was made with.
    let home = tempfile::tempdir().expect("tmp");
    std::fs::copy(app.db.dir.path().join("pepper"), home.path().join("pepper")).expect("pepper");
    let url = format!("sqlite://{}", home.path().join("keysmith.db").display());
    let out = keysmith(
        &["restore", file.to_str().expect("utf-8")],
        &url,
        home.path(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let server = Running::serve_database(&url, home.path());
    let verdict = app
        .client
        .post(format!("{}/api/v1/verify", server.base))
        .bearer_auth(&app.admin_key)
        .json(&json!({"key": plaintext}))
        .send()
        .await
        .expect("verify");
    let verdict = expect_json(verdict, StatusCode::OK).await;
    assert_eq!(verdict["code"], "valid", "{verdict}");
    drop(server);

    // Restoring again over the database needs --force; with it, it works.
    let out = keysmith(
        &["restore", file.to_str().expect("utf-8")],
        &url,
        home.path(),
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("--force"), "{}", text(&out));
    let out = keysmith(
        &["restore", "--force", file.to_str().expect("utf-8")],
        &url,
        home.path(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn what_is_not_a_backup_is_refused_and_the_database_stays() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let database = app.db.dir.path().join("keysmith.db");
    let before = std::fs::read(&database).expect("db");
    let junk = app.db.dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database at all, only words").expect("junk");
    let out = keysmith(
        &["restore", "--force", junk.to_str().expect("utf-8")],
        &app.db.url,
        app.db.dir.path(),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not a Keysmith SQLite backup"),
        "{}",
        text(&out)
    );

    // A SQLite file without Keysmith's schema is no backup either.
    let foreign = app.db.dir.path().join("foreign.db");
    std::process::Command::new("python3").args(["-c", &format!("import sqlite3; c = sqlite3.connect({:?}); c.execute('CREATE TABLE t (x)'); c.commit()", foreign.display().to_string())]).status().expect("python3");
    let out = keysmith(
        &["restore", "--force", foreign.to_str().expect("utf-8")],
        &app.db.url,
        app.db.dir.path(),
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("no Keysmith schema"), "{}", text(&out));
    assert_eq!(
        std::fs::read(&database).expect("db"),
        before,
        "the database was not touched"
    );

    // A backup onto an existing file, or of a database that is not there.
    let out = keysmith(
        &["backup", junk.to_str().expect("utf-8")],
        &app.db.url,
        app.db.dir.path(),
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("never overwrites"), "{}", text(&out));
    assert_eq!(
        std::fs::read(&junk).expect("junk"),
        b"this is not a database at all, only words"
    );
    let empty = tempfile::tempdir().expect("tmp");
    let missing = format!("sqlite://{}", empty.path().join("keysmith.db").display());
    let out = keysmith(
        &["backup", empty.path().join("b.db").to_str().expect("utf-8")],
        &missing,
        empty.path(),
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("nothing to back up"), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(empty.path()).expect("dir").count(),
        0,
        "no database and no backup created"
    );
}

#[tokio::test]
async fn postgres_is_backed_up_with_its_own_tools() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let file = app.db.dir.path().join("b.db");
    for args in [
        vec!["backup", file.to_str().expect("utf-8")],
        vec!["restore", "--force", file.to_str().expect("utf-8")],
    ] {
        let out = keysmith(&args, &app.db.url, app.db.dir.path()).await;
        assert!(!out.status.success());
        assert!(text(&out).contains("pg_dump"), "{}", text(&out));
    }
    assert!(!file.exists());
}
