//! The command line, run as a real process: from nothing to a verified key.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{
    child::assert_ran,
    helpers::{ClosedPort, Engine, TestDb},
};

fn keysmith(db: &TestDb, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .env("KEYSMITH_DATABASE_URL", &db.url)
        .env("KEYSMITH_DATA_DIR", db.dir.path())
        .env("KEYSMITH_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keysmith");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

async fn from_nothing_to_a_verified_key(engine: Engine) {
    let db = TestDb::new(engine).await;
    let out = keysmith(&db, &["migrate"], None);
    assert_ran(&out);
    let out = keysmith(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--name",
            "Acme Inc",
            "--key-prefix",
            "acme",
        ],
        None,
    );
    assert_ran(&out);

    let dup = keysmith(&db, &["tenant", "create", "acme", "--name", "Again"], None);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = keysmith(&db, &["tenant", "create", "Bad Slug", "--name", "x"], None);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tenant slug"));

    let policy = keysmith(
        &db,
        &["tenant", "policy", "acme", "--rotation-overlap-days", "3"],
        None,
    );
    assert_ran(&policy);
    let shown: Value = serde_json::from_slice(&policy.stdout).expect("policy json");
    assert_eq!(shown["rotation_overlap_days"], 3);
    let refused = keysmith(
        &db,
        &["tenant", "policy", "acme", "--rotation-overlap-days", "31"],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("between 1 and 30"));
    let unchanged = keysmith(&db, &["tenant", "policy", "acme"], None);
    let shown: Value = serde_json::from_slice(&unchanged.stdout).expect("policy json");
    assert_eq!(
        shown["rotation_overlap_days"], 3,
        "a refused change left the policy as it was"
    );
    let limited = keysmith(
        &db,
        &[
            "tenant",
            "policy",
            "acme",
            "--default-quota",
            r#"{"calls": 500, "per": "day"}"#,
        ],
        None,
    );
    let shown: Value = serde_json::from_slice(&limited.stdout).expect("policy json");
    assert_eq!(
        shown["default_quota"],
        serde_json::json!({"calls": 500, "per": "day"})
    );
    for bad in ["{\"calls\": 0, \"per\": \"day\"}", "lots"] {
        let refused = keysmith(
            &db,
            &["tenant", "policy", "acme", "--default-quota", bad],
            None,
        );
        assert!(!refused.status.success(), "{bad}");
    }
    let lifted = keysmith(
        &db,
        &["tenant", "policy", "acme", "--default-quota", "none"],
        None,
    );
    let shown: Value = serde_json::from_slice(&lifted.stdout).expect("policy json");
    assert_eq!(shown["default_quota"], Value::Null);

    let out = keysmith(
        &db,
        &[
            "user",
            "create",
            "--email",
            "owner@acme.test",
            "--tenant",
            "acme",
            "--role",
            "owner",
        ],
        Some("a long enough password\n"),
    );
    assert_ran(&out);
    let short = keysmith(
        &db,
        &["user", "create", "--email", "x@acme.test"],
        Some("short\n"),
    );
    assert!(!short.status.success(), "short passwords are refused");

    for action in ["disable", "enable"] {
        let out = keysmith(&db, &["user", action, "--email", "owner@acme.test"], None);
        assert_ran(&out);
    }
    let out = keysmith(
        &db,
        &["user", "reset-password", "--email", "owner@acme.test"],
        Some("a temporary password\n"),
    );
    assert_ran(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("must choose a new one"));
    let short = keysmith(
        &db,
        &["user", "reset-password", "--email", "owner@acme.test"],
        Some("short\n"),
    );
    assert!(
        !short.status.success(),
        "a short temporary password is refused"
    );
    for args in [
        &["user", "reset-totp", "--email", "owner@acme.test"][..],
        &["tenant", "require-totp", "acme"][..],
        &["tenant", "require-totp", "acme", "--off"][..],
    ] {
        let out = keysmith(&db, args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = keysmith(&db, &["tenant", "require-totp", "nope"], None);
    assert!(!out.status.success(), "an unknown tenant is an error");
    let unknown = keysmith(
        &db,
        &["user", "disable", "--email", "nobody@acme.test"],
        None,
    );
    assert!(!unknown.status.success(), "an unknown account is an error");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let out = keysmith(
        &db,
        &[
            "management-key",
            "create",
            "--tenant",
            "acme",
            "--owner-email",
            "ops@acme.test",
            "--json",
            "--expires-in-days",
            "30",
        ],
        None,
    );
    assert_ran(&out);
    let created: Value = serde_json::from_slice(&out.stdout).expect("json output");
    let key = created["key"].as_str().expect("key");
    assert!(key.starts_with("acme_"), "{key}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(key),
        "the key goes to stdout only"
    );

    let unknown = keysmith(
        &db,
        &[
            "management-key",
            "create",
            "--tenant",
            "nope",
            "--owner-email",
            "ops@acme.test",
        ],
        None,
    );
    assert!(!unknown.status.success());
    let ownerless = keysmith(&db, &["management-key", "create", "--tenant", "acme"], None);
    assert!(
        !ownerless.status.success(),
        "a management key needs someone to tell before it expires"
    );
    assert!(String::from_utf8_lossy(&ownerless.stderr).contains("--owner-email"));
    let out = keysmith(
        &db,
        &[
            "management-key",
            "create",
            "--tenant",
            "acme",
            "--owner-email",
            "Sec@acme.test",
            "--scope",
            "verify",
            "--json",
        ],
        None,
    );
    assert_ran(&out);
    let verify_only: Value = serde_json::from_slice(&out.stdout).expect("json output");
    let verify_only_id = verify_only["id"].as_str().expect("id").to_owned();
    let verify_only = verify_only["key"].as_str().expect("key").to_owned();

    // A gateway must say whose keys it accepts; an unknown tenant is an error, not an empty gate.
    let closed = ClosedPort::bind();
    let nowhere = format!("http://{}", closed.addr());
    let upstream = ["gateway", "--upstream", &nowhere, "--bind", "127.0.0.1:0"];
    let unscoped = keysmith(&db, &upstream, None);
    assert!(!unscoped.status.success());
    let said = String::from_utf8_lossy(&unscoped.stderr);
    assert!(
        said.contains("--tenant") && said.contains("--any-tenant"),
        "{said}"
    );
    let both = keysmith(
        &db,
        &[&upstream[..], &["--tenant", "acme", "--any-tenant"]].concat(),
        None,
    );
    assert!(
        !both.status.success(),
        "--tenant and --any-tenant exclude each other"
    );
    // An allowed origin is an origin; a wildcard is not one.
    let wildcard = keysmith(
        &db,
        &[
            &upstream[..],
            &["--tenant", "acme", "--allowed-origin", "*"],
        ]
        .concat(),
        None,
    );
    assert!(!wildcard.status.success());
    assert!(
        String::from_utf8_lossy(&wildcard.stderr).contains("`*` is not an origin"),
        "{}",
        String::from_utf8_lossy(&wildcard.stderr)
    );
    let nope = keysmith(&db, &[&upstream[..], &["--tenant", "nope"]].concat(), None);
    assert!(!nope.status.success());
    assert!(
        String::from_utf8_lossy(&nope.stderr).contains("no tenant with the slug `nope`"),
        "{}",
        String::from_utf8_lossy(&nope.stderr)
    );

    // The key the CLI printed authenticates against the real server on the same database.
    let app = crate::helpers::TestApp::spawn_on(db).await;
    let res = app.get_as(key, "/api/v1/tenants/acme/keys").await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let verdict = app
        .post_as(key, "/api/v1/verify", &serde_json::json!({"key": key}))
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(verdict["code"], "valid");
    assert_eq!(verdict["scopes"], serde_json::json!(["keysmith:admin"]));
    let verdict = app
        .post_as(
            &verify_only,
            "/api/v1/verify",
            &serde_json::json!({"key": key}),
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(verdict["code"], "valid", "a verify-scope key may verify");
    // Management keys have an owner who hears before they expire.
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT owner_email FROM service_users WHERE name = 'keysmith-management'",
    )
    .fetch_one(app.state.pool())
    .await
    .expect("owner");
    assert_eq!(
        owner.as_deref(),
        Some("sec@acme.test"),
        "the latest owner named"
    );
    app.clock.advance(time::Duration::days(61));
    app.tick().await;
    let reminded: Vec<(String, String)> =
        sqlx::query_as("SELECT key_id, recipient FROM outbox WHERE kind = 'expiry_reminder'")
            .fetch_all(app.state.pool())
            .await
            .expect("outbox");
    assert!(
        reminded
            .iter()
            .any(|(k, r)| *k == verify_only_id && r == "sec@acme.test"),
        "the 90-day management key is reminded 29 days ahead: {reminded:?}"
    );
    let res = app.get_as(&verify_only, "/api/v1/tenants/acme/keys").await;
    assert_eq!(
        res.status(),
        reqwest::StatusCode::FORBIDDEN,
        "and nothing else"
    );
}

#[tokio::test]
async fn cli_sqlite() {
    from_nothing_to_a_verified_key(Engine::Sqlite).await;
}

#[tokio::test]
async fn cli_postgres() {
    from_nothing_to_a_verified_key(Engine::Postgres).await;
}

/// `keysmith serve` on an empty database prints the setup link on its
/// output, and the link's token appears in no log line.
#[tokio::test]
async fn serve_prints_a_setup_link_on_a_fresh_database() {
    use std::io::{BufRead, BufReader, Read};
    let db = TestDb::new(Engine::Sqlite).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("serve")
        .env("KEYSMITH_DATABASE_URL", &db.url)
        .env("KEYSMITH_DATA_DIR", db.dir.path())
        .env("KEYSMITH_BIND", "127.0.0.1:0")
        .env("KEYSMITH_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keysmith serve");
    // stderr drained on its own thread: debug logs of the migrations fill a
    // pipe's 64 KiB before the link is printed, and a child blocked on a
    // full stderr never writes the link this test waits for.
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).expect("logs");
        logs
    });
    let stdout = child.stdout.take().expect("stdout");
    let link = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take(10)
        .find_map(|line| {
            line.split_once("/admin/setup?token=")
                .map(|(_, t)| t.trim().to_owned())
        });
    let _ = child.kill();
    let _ = child.wait();
    let logs = logs.join().expect("stderr read");
    let token = link.expect("a setup link on stdout");
    assert!(token.len() >= 32, "{token}");
    assert!(!logs.contains(&token), "the token is printed, never logged");
}

#[test]
fn database_url_secrets_never_reach_the_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let closed = ClosedPort::bind();
    let port = closed.addr().port();
    let out = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("migrate")
        .env("KEYSMITH_DATA_DIR", dir.path())
        .env("KEYSMITH_LOG", "trace")
        .env(
            "KEYSMITH_DATABASE_URL",
            format!(
                "postgres://app:p@ss:hunter2@127.0.0.1:{port}/k?sslpassword=s3cret&password=hunter3"
            ),
        )
        .output()
        .expect("run keysmith");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "nothing listens on port {port}");
    assert!(
        all.contains(&format!(
            "failed to connect to the database at postgres://app:***@127.0.0.1:{port}/k"
        )),
        "{all}"
    );
    for secret in ["hunter2", "hunter3", "s3cret", "p@ss"] {
        assert!(!all.contains(secret), "{secret} printed: {all}");
    }
}
