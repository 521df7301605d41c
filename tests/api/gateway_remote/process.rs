//! `keysmith gateway --verify-url` as a real process (tokio::process) with
//! no database access at all: an environment holding only what the test
//! gives it, an empty working and data directory that must stay empty.

use std::{process::Stdio, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::{Mutex, oneshot},
};

use crate::helpers::TestApp;

/// A running gateway, killed when dropped.
pub struct GatewayProcess {
    child: Child,
    /// `http://<address>`.
    pub base: String,
    logs: Arc<Mutex<String>>,
    /// Its working directory and `KEYSMITH_DATA_DIR`: both must stay empty.
    pub dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// The command: `keysmith gateway --upstream <upstream> --tenant acme
/// --bind 127.0.0.1:0 --verify-url <verify_url> <args>` (no `--tenant`
/// when `args` has `--any-tenant`), with only `env` (and
/// `PATH`) in its environment.
fn command(
    verify_url: &str,
    upstream: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Command, (tempfile::TempDir, tempfile::TempDir)) {
    let cwd = tempfile::tempdir().expect("working dir");
    let data = tempfile::tempdir().expect("data dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_keysmith"));
    command
        .args(["gateway", "--upstream", upstream])
        .args(if args.contains(&"--any-tenant") {
            &[][..]
        } else {
            &["--tenant", "acme"][..]
        })
        .args(["--bind", "127.0.0.1:0", "--verify-url", verify_url])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYSMITH_DATA_DIR", data.path())
        .env("KEYSMITH_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    (command, (cwd, data))
}

impl GatewayProcess {
    /// Starts it with `KEYSMITH_VERIFY_KEY=<verify_key>` and waits until it listens.
    pub async fn start(
        app: &TestApp,
        upstream: &str,
        verify_key: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_at(&app.base, upstream, verify_key, args, env).await
    }

    /// [`GatewayProcess::start`] verifying through `verify_url`.
    pub async fn start_at(
        verify_url: &str,
        upstream: &str,
        verify_key: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut all = vec![("KEYSMITH_VERIFY_KEY", verify_key)];
        all.extend_from_slice(env);
        let (mut command, dirs) = command(verify_url, upstream, args, &all);
        let mut child = command.spawn().expect("start keysmith gateway");
        let logs = Arc::new(Mutex::new(String::new()));
        let (listening, addr) = oneshot::channel();
        read_logs(&mut child, Arc::clone(&logs), Some(listening));
        let addr = tokio::select! {
            addr = addr => addr.ok(),
            status = child.wait() => {
                let logs = logs.lock().await.clone();
                panic!("keysmith gateway exited ({status:?}) before listening:\n{logs}");
            }
            () = tokio::time::sleep(Duration::from_secs(60)) => None,
        };
        let Some(addr) = addr else {
            panic!("keysmith gateway did not listen:\n{}", logs.lock().await);
        };
        Self {
            child,
            base: format!("http://{addr}"),
            logs,
            dirs,
        }
    }

    /// Runs a gateway that must refuse to start: its exit status and logs.
    pub async fn refused(
        app: &TestApp,
        upstream: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        Self::refused_at(&app.base, upstream, args, env).await
    }

    /// [`GatewayProcess::refused`] verifying through `verify_url`.
    pub async fn refused_at(
        verify_url: &str,
        upstream: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let (mut command, dirs) = command(verify_url, upstream, args, env);
        let out = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("exits")
            .expect("run keysmith gateway");
        let logs = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "started anyway:\n{logs}");
        assert_empty(&dirs);
        logs
    }

    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub async fn logs(&self) -> String {
        self.logs.lock().await.clone()
    }

    /// The value of `metric` (a full series name, labels included) at `/metrics`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().expect("a number"))
    }

    /// Polls `metric` until it is `value` (ten seconds at most).
    pub async fn wait_for_metric(&self, series: &str, value: f64) {
        for _ in 0..200 {
            if (self.metric(series).await - value).abs() < f64::EPSILON {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{series} stayed {} (expected {value}):\n{}",
            self.metric(series).await,
            self.logs().await
        );
    }

    /// SIGTERM, then waits for it to finish (it flushes its audit); its logs.
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(status.success());
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("wait");
        assert!(exited.success(), "{exited:?}:\n{}", self.logs().await);
        // Let the log reader see the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_empty(&self.dirs);
        self.logs().await
    }
}

/// Nothing written where a database or pepper would go.
pub fn assert_empty((cwd, data): &(tempfile::TempDir, tempfile::TempDir)) {
    for dir in [cwd.path(), data.path()] {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert!(entries.is_empty(), "the gateway wrote {entries:?}");
    }
}

/// Copies the child's stderr into `logs`; sends the address it listens on.
fn read_logs(
    child: &mut Child,
    logs: Arc<Mutex<String>>,
    listening: Option<oneshot::Sender<String>>,
) {
    let stderr = child.stderr.take().expect("stderr");
    tokio::spawn(async move {
        let mut listening = listening;
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("connection limits")
                && let Some((_, rest)) = line.split_once("addr=")
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            let mut logs = logs.lock().await;
            logs.push_str(&line);
            logs.push('\n');
        }
    });
}
