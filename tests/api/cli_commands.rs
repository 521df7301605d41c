//! `keysmith key|service-user|tenant|user` as a real process on the app's
//! database: the JSON they print is the JSON API's, what they do goes
//! through the same domain (audit, owner emails), bad input changes nothing,
//! and another tenant's ids are "not found".

use std::process::Stdio;

use serde_json::Value;

use crate::{both_engines, helpers::TestApp};

/// What one `keysmith` run printed, and whether it succeeded.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        assert!(self.ok, "failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// Asserts a refusal whose message contains `words`.
    fn refused(&self, words: &str) {
        assert!(!self.ok, "succeeded: {}", self.stdout);
        assert!(
            self.stderr.contains(words),
            "wanted {words:?} in: {}",
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "printed on a refusal: {}",
            self.stdout
        );
    }
}

async fn keysmith(app: &TestApp, args: &[&str]) -> Ran {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .env("KEYSMITH_DATABASE_URL", &app.db.url)
        .env("KEYSMITH_DATA_DIR", app.db.dir.path())
        .env("KEYSMITH_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run keysmith");
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn api(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).await;
    assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
    res.json().await.expect("json")
}

both_engines! {
    async fn keys_from_the_command_line_print_what_the_api_answers(app: TestApp) {
        let created = keysmith(&app, &["service-user", "create", "--tenant", "acme", "--name", "billing-bot",
            "--owner-email", "Owner@Acme.test", "--json"]).await.json();
        let user_id = created["id"].as_str().expect("id").to_owned();
        let path = format!("/api/v1/tenants/acme/service-users/{user_id}");
        assert_eq!(created, api(&app, &path).await, "the API's shape");
        let shown = keysmith(&app, &["service-user", "show", &user_id, "--tenant", "acme", "--json"]).await;
        assert_eq!(shown.json(), created);
        let listed = keysmith(&app, &["service-user", "list", "--tenant", "acme", "--json"]).await.json();
        assert_eq!(listed, api(&app, "/api/v1/tenants/acme/service-users").await);

        let issued = keysmith(&app, &["key", "create", "--tenant", "acme", "--service-user", &user_id,
            "--name", "ci", "--expires-in-days", "30", "--tool", "search*", "--json"]).await.json();
        let key = issued["key"].as_str().expect("the key, once").to_owned();
        let key_id = issued["id"].as_str().expect("id").to_owned();
        assert_eq!(app.verify_code(&key).await, "valid");
        assert_eq!(issued["allowed_tools"], serde_json::json!(["search*"]));
        assert_eq!(issued["created_by"], "cli", "the actor is the command line");
        let key_path = format!("/api/v1/tenants/acme/keys/{key_id}");
        let mut without_key = issued.clone();
        without_key.as_object_mut().expect("object").remove("key");
        assert_eq!(without_key, api(&app, &key_path).await, "create prints KeyInfo and the key");
        let shown = keysmith(&app, &["key", "show", &key_id, "--tenant", "acme", "--json"]).await.json();
        assert_eq!(shown, api(&app, &key_path).await);
        assert!(!shown.to_string().contains(&key), "show never prints the key");
        let text = keysmith(&app, &["key", "show", &key_id, "--tenant", "acme"]).await;
        let line = |name: &str| text.stdout.lines().find(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_owned());
        assert_eq!(line("tools").as_deref(), Some("search*"), "{}", text.stdout);
        assert_eq!(line("resources").as_deref(), Some("none"), "naming tools leaves out resources");
        assert!(!text.stdout.contains(&key), "{}", text.stdout);
        let listed = keysmith(&app, &["key", "list", "--tenant", "acme", "--service-user", &user_id, "--json"]).await.json();
        assert_eq!(listed, api(&app, &format!("/api/v1/tenants/acme/keys?service_user_id={user_id}")).await);

        // Rotation: the API's seven-day window, the owner's email, the audit row.
        let rotated = keysmith(&app, &["key", "rotate", &key_id, "--tenant", "acme", "--json"]).await.json();
        let new_key = rotated["new"]["key"].as_str().expect("new key").to_owned();
        assert_eq!(rotated["old"]["id"], key_id.as_str());
        assert_eq!(rotated["old"]["status"], "rotating");
        let cutoff = time::OffsetDateTime::parse(rotated["old"]["expires_at"].as_str().expect("cutoff"),
            &time::format_description::well_known::Rfc3339).expect("rfc 3339");
        let window = cutoff - time::OffsetDateTime::now_utc();
        assert!(window > time::Duration::days(6) && window <= time::Duration::days(7), "{window}");
        assert_eq!(app.verify_code(&key).await, "valid", "the old key works through the overlap");
        assert_eq!(app.verify_code(&new_key).await, "valid");
        let emails: Vec<(String,)> = sqlx::query_as("SELECT recipient FROM outbox WHERE kind = 'rotation' AND key_id = $1")
            .bind(&key_id).fetch_all(app.state.pool()).await.expect("outbox");
        assert_eq!(emails, [("owner@acme.test".to_owned(),)], "the owner hears of it");
        let audited: Vec<(String, String)> = sqlx::query_as("SELECT action, actor FROM audit_events WHERE key_id = $1 ORDER BY id")
            .bind(&key_id).fetch_all(app.state.pool()).await.expect("audit");
        assert!(audited.iter().any(|(action, actor)| action.contains("rotate") && actor == "cli"), "{audited:?}");
        keysmith(&app, &["key", "rotate", &key_id, "--tenant", "acme"]).await.refused("only an active key can be rotated");

        let new_id = rotated["new"]["id"].as_str().expect("id");
        let revoked = keysmith(&app, &["key", "revoke", new_id, "--tenant", "acme", "--reason", "leaked", "--json"]).await.json();
        assert_eq!((&revoked["status"], &revoked["revoked_reason"]), (&"revoked".into(), &"leaked".into()));
        assert_eq!(app.verify_code(&new_key).await, "revoked", "at once");

        // A service user disabled from the command line stops its keys at once.
        keysmith(&app, &["service-user", "disable", &user_id, "--tenant", "acme"]).await.succeeded();
        assert_eq!(app.verify_code(&key).await, "disabled");
        keysmith(&app, &["service-user", "enable", &user_id, "--tenant", "acme"]).await.succeeded();
        assert_eq!(app.verify_code(&key).await, "valid");
    }

    async fn tables_are_aligned_and_tenants_and_users_are_listed(app: TestApp) {
        let user_id = app.create_service_user("bot").await;
        app.create_key(&user_id, serde_json::json!({"name": "a-rather-long-key-name"})).await;
        app.create_key(&user_id, serde_json::json!({"name": "short"})).await;
        let table = keysmith(&app, &["key", "list", "--tenant", "acme"]).await;
        assert!(table.ok, "{}", table.stderr);
        let lines: Vec<&str> = table.stdout.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"), "{}", table.stdout);
        let column = |line: &str| line.find("active").or_else(|| line.find("STATUS"));
        let at = column(lines[0]);
        assert!(lines[1..].iter().all(|l| column(l) == at), "columns line up:\n{}", table.stdout);
        assert!(lines.len() >= 3, "{}", table.stdout);

        app.create_tenant("beta").await;
        let tenants = keysmith(&app, &["tenant", "list", "--json"]).await.json();
        let slugs: Vec<&str> = tenants["items"].as_array().expect("items").iter()
            .map(|t| t["slug"].as_str().expect("slug")).collect();
        assert_eq!(slugs, ["acme", "beta"]);
        let acme = keysmith(&app, &["tenant", "show", "acme", "--json"]).await.json();
        assert_eq!(acme, api(&app, "/api/v1/tenants/acme").await, "the API's shape");
        assert_eq!(tenants["items"][0], acme);
        let shown = keysmith(&app, &["tenant", "show", "acme"]).await;
        // The values line up in one column after the names.
        let value_at = |l: &str| l.find("  ").map(|at| at + l[at..].len() - l[at..].trim_start().len());
        let lines: Vec<&str> = shown.stdout.lines().collect();
        assert!(lines.iter().all(|l| value_at(l) == value_at(lines[0])), "{}", shown.stdout);
        assert!(lines.iter().any(|l| l.starts_with("rotation overlap ") && l.ends_with(" 7 days")), "{}", shown.stdout);
        assert!(lines.iter().any(|l| l.starts_with("oauth access tokens ") && l.ends_with(" 10 minutes")), "{}", shown.stdout);
        assert!(lines.iter().any(|l| l.starts_with("oauth registration ") && l.ends_with(" open")), "{}", shown.stdout);
        // The registration switch is policy: set with the rest, audited the same way.
        let changed = keysmith(&app, &["tenant", "policy", "acme", "--oauth-registration", "closed"]).await;
        assert!(changed.ok && changed.stdout.contains(r#""oauth_registration_open":false"#), "{}", changed.stderr);
        let shown = keysmith(&app, &["tenant", "show", "acme"]).await;
        assert!(shown.stdout.lines().any(|l| l.starts_with("oauth registration ") && l.ends_with(" closed")), "{}", shown.stdout);
        keysmith(&app, &["tenant", "policy", "acme", "--oauth-registration", "ajar"]).await.refused("ajar");

        let users = keysmith(&app, &["user", "list", "--json"]).await.json();
        assert_eq!(users, serde_json::json!({"items": [], "next_cursor": null}));
    }

    async fn bad_input_is_refused_with_words_and_writes_nothing(app: TestApp) {
        let user_id = app.create_service_user("bot").await;
        let key = app.create_key(&user_id, serde_json::json!({})).await;
        let key_id = key["id"].as_str().expect("id").to_owned();
        let secret = key["key"].as_str().expect("key").to_owned();
        let beta = app.create_tenant("beta").await;
        let (keys_before, audit_before) = (app.count("api_keys").await, app.count("audit_events").await);

        keysmith(&app, &["key", "list", "--tenant", "nope"]).await.refused("tenant not found");
        keysmith(&app, &["service-user", "list", "--tenant", "nope"]).await.refused("tenant not found");
        keysmith(&app, &["tenant", "show", "nope"]).await.refused("tenant not found");
        // Another tenant's ids are not found, never acted on.
        keysmith(&app, &["key", "show", &key_id, "--tenant", &beta.slug]).await.refused("key not found");
        keysmith(&app, &["key", "revoke", &key_id, "--tenant", &beta.slug]).await.refused("key not found");
        keysmith(&app, &["key", "rotate", &key_id, "--tenant", &beta.slug]).await.refused("key not found");
        keysmith(&app, &["service-user", "disable", &user_id, "--tenant", &beta.slug]).await.refused("service user not found");
        keysmith(&app, &["key", "create", "--tenant", &beta.slug, "--service-user", &user_id, "--name", "x"]).await
            .refused("service user not found");
        // Malformed ids, and a whole key where an id belongs (never echoed).
        keysmith(&app, &["key", "show", "not an id", "--tenant", "acme"]).await.refused("is not a key id");
        let leaked = keysmith(&app, &["key", "revoke", &secret, "--tenant", "acme"]).await;
        leaked.refused("looks like a whole key");
        assert!(!leaked.stderr.contains(&secret), "{}", leaked.stderr);
        // Expiries out of the policy, or unreadable.
        let create = ["key", "create", "--tenant", "acme", "--service-user", &user_id, "--name", "x"];
        for (extra, words) in [
            (&["--expires-in-days", "0"][..], "--expires-in-days must be between 1 and"),
            (&["--expires-in-days", "100000"][..], "--expires-in-days must be between 1 and"),
            (&["--expires-at", "2001-01-01"][..], "--expires-at must be in the future"),
            (&["--expires-at", "tomorrow"][..], "--expires-at \"tomorrow\" is neither a date"),
            (&["--expires-at", "2030-01-01", "--expires-in-days", "3"][..], "cannot be used with"),
            (&["--tool", ""][..], "--tool"),
            (&["--rate-limit", "fast"][..], "--rate-limit takes JSON"),
        ] {
            keysmith(&app, &[&create[..], extra].concat()).await.refused(words);
        }
        keysmith(&app, &["key", "list", "--tenant", "acme", "--limit", "0"]).await.refused("--limit");
        keysmith(&app, &["service-user", "create", "--tenant", "acme", "--name", "bot", "--owner-email", "o@acme.test"]).await
            .refused("already");
        keysmith(&app, &["service-user", "create", "--tenant", "acme", "--name", "bot2", "--owner-email", "not-an-email"]).await
            .refused("email");
        assert_eq!(app.count("api_keys").await, keys_before, "no key written");
        assert_eq!(app.count("audit_events").await, audit_before, "nothing audited");
        assert_eq!(app.verify_code(&secret).await, "valid", "the key was not touched");
    }

    async fn a_burst_of_rotations_of_one_key_mints_one_new_key(app: TestApp) {
        let user_id = app.create_service_user("bot").await;
        let key = app.create_key(&user_id, serde_json::json!({})).await;
        let key_id = key["id"].as_str().expect("id").to_owned();
        let keys_before = app.count("api_keys").await;
        let args = ["key", "rotate", key_id.as_str(), "--tenant", "acme", "--json"];
        let runs = futures_util::future::join_all((0..6).map(|_| keysmith(&app, &args))).await;
        let won: Vec<&Ran> = runs.iter().filter(|r| r.ok).collect();
        assert_eq!(won.len(), 1, "{:?}", runs.iter().map(|r| &r.stderr).collect::<Vec<_>>());
        // A loser either saw the key already rotating, or lost the race to
        // the row between its read and its write: a conflict either way.
        for lost in runs.iter().filter(|r| !r.ok) {
            assert!(lost.stderr.contains("only an active key can be rotated")
                || lost.stderr.contains("the key changed while rotating"), "{}", lost.stderr);
            assert!(lost.stdout.is_empty(), "{}", lost.stdout);
        }
        assert_eq!(app.count("api_keys").await, keys_before + 1);
    }
}

impl Ran {
    /// Asserts success of a command whose text output is not the point.
    fn succeeded(&self) {
        assert!(self.ok, "failed: {}", self.stderr);
    }
}
