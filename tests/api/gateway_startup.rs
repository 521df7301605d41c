//! `keysmith gateway` on the database never creates or migrates it: a
//! database that is behind, or missing, is refused with a message naming
//! `keysmith migrate`, and left as it was.

use std::{process::Stdio, time::Duration};

use tokio::process::Command;

use crate::{both_engines, helpers::TestApp};

/// `keysmith gateway` with nothing from this environment but `PATH`, to an
/// upstream nobody serves.
pub fn bare_gateway() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keysmith"));
    command
        .args([
            "gateway",
            "--upstream",
            "http://127.0.0.1:9",
            "--tenant",
            "acme",
        ])
        .args(["--bind", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `command`: it must exit with an error; returns what it printed.
pub async fn refused(command: &mut Command) -> String {
    let out = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("exits")
        .expect("run keysmith gateway");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started anyway:\n{text}");
    text
}

/// Runs `keysmith gateway` on `database_url` (the app's pepper): it must
/// exit with an error; returns what it printed.
async fn refused_on(app: &TestApp, database_url: &str) -> String {
    refused(
        bare_gateway()
            .env("KEYSMITH_DATABASE_URL", database_url)
            .env("KEYSMITH_PEPPER_FILE", app.db.dir.path().join("pepper"))
            .env("KEYSMITH_DATA_DIR", app.db.dir.path()),
    )
    .await
}

async fn applied(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(app.state.pool())
        .await
        .expect("versions")
}

both_engines! {
    async fn a_gateway_refuses_a_database_that_is_behind_and_never_migrates_it(app: TestApp) {
        let all = applied(&app).await;
        let last = *all.last().expect("migrations");
        // As if this binary were newer than the database: its last migration not applied.
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(last)
            .execute(app.state.pool())
            .await
            .expect("forget a migration");
        let logs = refused_on(&app, &app.db.url).await;
        assert!(logs.contains("keysmith migrate") && logs.contains("behind"), "{logs}");
        assert_eq!(applied(&app).await, all[..all.len() - 1], "nothing migrated");
        // A database with no schema at all is refused the same way.
        sqlx::query("DROP TABLE _sqlx_migrations").execute(app.state.pool()).await.expect("drop");
        let logs = refused_on(&app, &app.db.url).await;
        assert!(logs.contains("keysmith migrate") && logs.contains("no Keysmith schema"), "{logs}");
    }
}

#[tokio::test]
async fn a_gateway_refuses_a_missing_sqlite_database_and_creates_nothing() {
    let app = TestApp::spawn(crate::helpers::Engine::Sqlite).await;
    let empty = tempfile::tempdir().expect("dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        empty.path().join("data/keysmith.db").display()
    );
    let logs = refused_on(&app, &url).await;
    assert!(
        logs.contains("keysmith migrate") && logs.contains("no database"),
        "{logs}"
    );
    let left: Vec<_> = std::fs::read_dir(empty.path()).expect("dir").collect();
    assert!(left.is_empty(), "created {left:?}");
}
