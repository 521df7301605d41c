//! The command line as a tool: `--help` lists every `KEYSMITH_*` variable the
//! code reads (and the book documents each), shell completions, and a password
//! typed at a terminal that is never shown. (The table lives in the book:
//! `docs/src/operating/configuration.md`.)

use std::{collections::BTreeSet, path::Path, process::Command};

use keysmith::config::variables::VARIABLES;

use crate::helpers::{Engine, TestDb};

/// Where the book documents every variable (README links to it).
const CONFIGURATION_PAGE: &str = "docs/src/operating/configuration.md";

/// Every `KEYSMITH_*` name in the server's sources: what the code reads.
fn names_in_sources() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).expect("source");
            for (at, _) in text.match_indices("KEYSMITH_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
    }
    // Set by build.rs for the binary itself, never read from the environment.
    for build_time in ["KEYSMITH_", "KEYSMITH_GIT_COMMIT", "KEYSMITH_BUILD_DATE"] {
        names.remove(build_time);
    }
    names
}

#[test]
fn help_lists_every_variable_the_code_reads_and_readme_documents_each() {
    let listed: BTreeSet<String> = VARIABLES
        .iter()
        .map(|(name, ..)| (*name).to_owned())
        .collect();
    let read = names_in_sources();
    let undocumented: Vec<&String> = read.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "read by the code but not in config/variables.rs: {undocumented:?}"
    );
    let unread: Vec<&String> = listed.difference(&read).collect();
    assert!(unread.is_empty(), "listed but never read: {unread:?}");

    let table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIGURATION_PAGE))
            .expect("the book's configuration page");
    for name in &listed {
        assert!(
            table.contains(&format!("| `{name}` |")),
            "the Configuration table ({CONFIGURATION_PAGE}) lacks {name}"
        );
    }

    let out = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("--help")
        .output()
        .expect("keysmith --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    for (name, default, _) in VARIABLES {
        assert!(
            help.contains(name) && help.contains(&format!("[default: {default}]")),
            "--help lacks {name}:\n{help}"
        );
    }
}

#[test]
fn completions_are_generated_for_the_common_shells() {
    for (shell, marker) in [
        ("bash", "_keysmith()"),
        ("zsh", "#compdef keysmith"),
        ("fish", "complete -c keysmith"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keysmith"))
            .args(["completions", shell])
            .output()
            .expect("completions");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).expect("utf-8");
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("management-key") && script.contains("gateway"),
            "{shell} completes the subcommands"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(["completions", "cmd.exe"])
        .output()
        .expect("completions");
    assert!(!out.status.success(), "an unknown shell is refused");
}

/// `keysmith user create` at a real terminal (a pseudo-terminal from Python's
/// `pty`): the prompt is shown, the password typed is not echoed back.
#[tokio::test]
async fn a_password_typed_at_a_terminal_is_not_shown() {
    let db = TestDb::new(Engine::Sqlite).await;
    let migrated = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("migrate")
        .env("KEYSMITH_DATABASE_URL", &db.url)
        .env("KEYSMITH_DATA_DIR", db.dir.path())
        .output()
        .expect("migrate");
    assert!(migrated.status.success());
    let script = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "user", "create", "--email", "tty@example.test"])
out = b""
deadline = time.time() + 30
while b"Password" not in out and time.time() < deadline:
    out += os.read(fd, 1024)
os.write(fd, b"a-secret-typed-at-the-terminal\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_keysmith")])
        .env("KEYSMITH_DATABASE_URL", &db.url)
        .env("KEYSMITH_DATA_DIR", db.dir.path())
        .output()
        .await
        .expect("python3 pty");
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{terminal}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(terminal.contains("Password (not shown)"), "{terminal}");
    assert!(terminal.contains("created tty@example.test"), "{terminal}");
    assert!(
        !terminal.contains("a-secret-typed-at-the-terminal"),
        "the password was echoed:\n{terminal}"
    );
}

/// `--help` shows the value a variable has now, but never a credential's:
/// the database URL's password and the tokens stay out of it.
#[test]
fn help_never_shows_a_credential() {
    let out = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(["key", "list", "--help"])
        .env(
            "KEYSMITH_DATABASE_URL",
            "postgres://app:hunter2@db/keysmith",
        )
        .env("KEYSMITH_METRICS_TOKEN", "metrics-secret-token")
        .env("KEYSMITH_FORWARD_AUTH_TOKEN", "forward-auth-secret-token")
        .env("KEYSMITH_SMTP_URL", "smtp://u:mailpass@mx:25")
        .env("KEYSMITH_SCHEDULER_INTERVAL_SECS", "42")
        .output()
        .expect("keysmith key list --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        help.contains("--scheduler-interval-secs")
            && help.contains("KEYSMITH_SCHEDULER_INTERVAL_SECS=42"),
        "a flag per variable, with its value now:\n{help}"
    );
    for secret in [
        "hunter2",
        "metrics-secret-token",
        "forward-auth-secret-token",
        "mailpass",
    ] {
        assert!(!help.contains(secret), "{secret} shown:\n{help}");
    }
}
