//! What Keysmith leaves on disk and in the database: private files, and no
//! session id a reader could replay.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output},
};

use keysmith::{domain::people::accounts::Role, sessions::stored_id};
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, admin_user, browser, sign_in},
    both_engines,
    child::assert_ran,
    helpers::{Engine, TestDb},
};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn migrate(data_dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keysmith"));
    cmd.arg("migrate")
        .env_remove("KEYSMITH_DATABASE_URL")
        .env("KEYSMITH_DATA_DIR", data_dir)
        .env("KEYSMITH_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run keysmith")
}

#[test]
fn the_data_directory_and_sqlite_files_are_private_to_the_service() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("fresh");
    let out = migrate(&data, &[]);
    assert_ran(&out);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("pepper")), 0o600);
    for entry in std::fs::read_dir(&data).expect("list") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(data.join("keysmith.db").exists());

    // An existing directory and database from before are tightened.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        data.join("keysmith.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let out = migrate(&data, &[]);
    assert_ran(&out);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("keysmith.db")), 0o600);
}

async fn a_readable_pepper_file_is_refused_unless_allowed(engine: Engine) {
    let db = TestDb::new(engine).await;
    let url = db.url.clone();
    let with_db = [("KEYSMITH_DATABASE_URL", url.as_str())];
    let out = migrate(db.dir.path(), &with_db);
    assert_ran(&out);
    let pepper = db.dir.path().join("pepper");
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = migrate(db.dir.path(), &with_db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(
        stderr.contains("pepper")
            && stderr.contains("644")
            && stderr.contains("KEYSMITH_ALLOW_READABLE_PEPPER"),
        "{stderr}"
    );
    let out = migrate(
        db.dir.path(),
        &[with_db[0], ("KEYSMITH_ALLOW_READABLE_PEPPER", "1")],
    );
    assert_ran(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readable by others"),
        "warned"
    );
}

#[tokio::test]
async fn readable_pepper_sqlite() {
    a_readable_pepper_file_is_refused_unless_allowed(Engine::Sqlite).await;
}

#[tokio::test]
async fn readable_pepper_postgres() {
    a_readable_pepper_file_is_refused_unless_allowed(Engine::Postgres).await;
}

both_engines! {
    async fn the_database_stores_only_a_hash_of_each_session_id(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let client = browser();
        let res = sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie = res.headers().get_all("set-cookie").iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("keysmith="))
            .and_then(|c| c.split(';').next())
            .expect("session cookie")
            .to_owned();
        assert_eq!(client.get(app.url("/admin/api-keys")).send().await.expect("page").status(), StatusCode::OK, "the session works");
        let dump = app.db.dump();
        assert!(!dump.contains(&cookie), "the cookie's session id is in the database");
        let id: tower_sessions::session::Id = cookie.parse().expect("a session id");
        assert!(dump.contains(&stored_id(&id).to_string()), "stored under its hash");
    }
}
