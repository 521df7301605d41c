//! Only `serve` and `migrate` create or migrate a database: every other
//! command run from the wrong directory (or at a database nobody migrated)
//! fails naming the database it looked for, and creates nothing.

use std::process::Stdio;

/// Commands other than `serve` and `migrate` never create a database: from
/// an empty directory (the default `./keysmith-data/keysmith.db`) or with a
/// SQLite path that does not exist, they fail naming what they looked for,
/// and leave the directory empty.
#[tokio::test]
async fn commands_refuse_a_missing_database_and_create_nothing() {
    let empty = tempfile::tempdir().expect("dir");
    let missing = empty.path().join("elsewhere/keysmith.db");
    let explicit = format!("sqlite://{}?mode=rwc", missing.display());
    for (url, named) in [
        (None, "keysmith-data/keysmith.db"),
        (Some(explicit.as_str()), "elsewhere/keysmith.db"),
    ] {
        for args in [
            &["tenant", "list"][..],
            &["tenant", "create", "acme", "--name", "Acme"][..],
            &["key", "list", "--tenant", "acme"][..],
            &[
                "service-user",
                "create",
                "--tenant",
                "acme",
                "--name",
                "b",
                "--owner-email",
                "o@x.test",
            ][..],
            &["user", "create", "--email", "a@x.test", "--superadmin"][..],
            &[
                "management-key",
                "create",
                "--tenant",
                "acme",
                "--owner-email",
                "o@x.test",
            ][..],
        ] {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keysmith"));
            command
                .args(args)
                .current_dir(empty.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .stdin(Stdio::null());
            if let Some(url) = url {
                command.env("KEYSMITH_DATABASE_URL", url);
            }
            let out = command.output().await.expect("run keysmith");
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} succeeded");
            assert!(
                said.contains(named) && said.contains("keysmith migrate"),
                "{args:?}: {said}"
            );
            let left: Vec<_> = std::fs::read_dir(empty.path()).expect("dir").collect();
            assert!(left.is_empty(), "{args:?} created {left:?}");
        }
    }
}

/// On PostgreSQL a database without Keysmith's schema is refused the same
/// way, and no table is created in it.
#[tokio::test]
async fn commands_refuse_a_postgres_database_without_the_schema() {
    let db = crate::helpers::TestDb::new(crate::helpers::Engine::Postgres).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(["key", "list", "--tenant", "acme"])
        .env("KEYSMITH_DATABASE_URL", &db.url)
        .env("KEYSMITH_DATA_DIR", db.dir.path())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run keysmith");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("no Keysmith schema") && said.contains("keysmith migrate"),
        "{said}"
    );
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(tables, 0, "nothing created");
    assert!(!db.dir.path().join("pepper").exists(), "no pepper made");
}
