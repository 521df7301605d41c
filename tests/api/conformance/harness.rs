//! The third-party programs of `tests/conformance` as child processes (see
//! its README for their CLI contract), and a `keysmith gateway` in front of
//! them whose audit the test can flush.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use keysmith_verify::TenantScope;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::{gateway::start_gateway, helpers::TestApp, mcp::Serving};

/// Where the harness lives.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// The real Python interpreter, not the pyenv shim (whose bash wrapper
/// would stand between the PID we signal and the server).
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs (scripts/test installs the harness)");
        String::from_utf8(out.stdout)
            .expect("utf-8 path")
            .trim()
            .to_owned()
    })
}

/// A conformance server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// TS SDK `McpServer`, stateless, SSE answers.
    TsServer,
    /// The same with sessions (`Mcp-Session-Id`), as the SDK's stateful example.
    TsServerStateful,
    /// Python SDK server on uvicorn (about 1 s to start).
    PyServer,
    /// The same with sessions (`Mcp-Session-Id`), the SDK's default.
    PyServerStateful,
    /// The stdlib JSON-RPC server that acts on whatever it can decode.
    Careless,
}

impl Program {
    fn command(self) -> Command {
        let dir = conformance_dir();
        let (program, script) = match self {
            Self::TsServer | Self::TsServerStateful => ("node", "ts_server.mjs"),
            Self::PyServer | Self::PyServerStateful => (python(), "py_server.py"),
            Self::Careless => (python(), "careless_upstream.py"),
        };
        let mut command = Command::new(program);
        command.arg(dir.join(script)).current_dir(dir);
        if matches!(self, Self::TsServerStateful | Self::PyServerStateful) {
            command.arg("--stateful");
        }
        command
    }
}

/// A running conformance server on a port it chose itself; killed with its
/// whole process group when dropped, pass or fail.
#[derive(Debug)]
pub struct Upstream {
    pub base: String,
    pub ran_log: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl Upstream {
    pub async fn start(program: Program) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ran_log = dir.path().join("ran.log");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut child = program
            .command()
            .args(["--port", "0"])
            .env("RAN_LOG", &ran_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("{program:?} did not start: {err}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = oneshot::channel();
        // A thread reads the announcement, then keeps draining the pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let port = lines.by_ref().find_map(|line| {
                line.strip_prefix("listening ")
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
            let _ = tx.send(port);
            lines.for_each(drop);
        });
        let mut upstream = Self {
            base: String::new(),
            ran_log,
            child,
            dir,
        };
        let port = tokio::time::timeout(Duration::from_secs(30), rx).await;
        let Ok(Ok(Some(port))) = port else {
            panic!(
                "{program:?} never printed `listening <port>`; stderr:\n{}",
                upstream.stderr()
            );
        };
        upstream.base = format!("http://127.0.0.1:{port}");
        upstream
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Every tool that ran so far, with the service user it saw.
    pub fn ran(&self) -> Vec<(String, String)> {
        self.ran_since(0).0
    }

    /// The tools that ran since the log was `offset` bytes long, and its
    /// length now.
    pub fn ran_since(&self, offset: u64) -> (Vec<(String, String)>, u64) {
        use std::io::{Read, Seek, SeekFrom};
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.ran_log) {
            file.seek(SeekFrom::Start(offset)).expect("seek");
            file.read_to_string(&mut text).expect("read RAN_LOG");
        }
        let len = offset + text.len() as u64;
        let ran = text
            .lines()
            .map(|line| {
                let (tool, user) = line.split_once('\t').unwrap_or((line, ""));
                (tool.to_owned(), user.to_owned())
            })
            .collect();
        (ran, len)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        crate::child::kill_group(&mut self.child);
    }
}

/// A conformance client program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliClient {
    Ts,
    Py,
}

impl CliClient {
    /// Runs `scenario` against `url` with `key` (empty: no Authorization) and
    /// returns the client's one-line JSON report.
    pub async fn run(self, url: &str, scenario: &str, key: &str) -> Value {
        let dir = conformance_dir();
        let (program, script) = match self {
            Self::Ts => ("node", "ts_client.mjs"),
            Self::Py => (python(), "py_client.py"),
        };
        let child = tokio::process::Command::new(program)
            .arg(dir.join(script))
            .args([url, scenario])
            .current_dir(&dir)
            .env("KEYSMITH_KEY", key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{self:?} client did not start: {err}"));
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{self:?} client {scenario}: no answer within 60 s"))
            .expect("client output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{self:?} client {scenario} exited with {}: {stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|_| {
            panic!(
                "{self:?} client printed no JSON report: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// `keysmith gateway` as `gateway::run` builds it, scoped to the test's
/// tenant, on port 0, stoppable so its audit queue can be flushed.
#[derive(Debug)]
pub struct Gateway {
    pub base: String,
    serving: Serving,
}

impl Gateway {
    pub async fn start(app: &TestApp, upstream: &str) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let scope = TenantScope::only(app.tenant.slug.as_str());
        let (base, flusher, task) = start_gateway(app, upstream, scope, None, None, async {
            let _ = stopped.await;
        })
        .await;
        Self {
            base,
            serving: Serving::new(stop, task, Some(flusher)),
        }
    }

    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// Stops serving, then writes every queued audit event.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// One audit row: `(tool, outcome, reason)`.
pub type AuditRow = (String, String, String);

/// The gateway's audit rows of `key_id`, oldest first.
pub async fn audit_rows(app: &TestApp, key_id: &str) -> Vec<AuditRow> {
    let rows: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT tool, outcome, reason FROM audit_events WHERE key_id = $1 AND action = 'tool.call' ORDER BY id",
    )
    .bind(key_id)
    .fetch_all(app.state.pool())
    .await
    .expect("audit rows");
    rows.into_iter()
        .map(|(tool, outcome, reason)| {
            (
                tool.unwrap_or_default(),
                outcome,
                reason.unwrap_or_default(),
            )
        })
        .collect()
}

/// A key of `acme` for `service_user` allowed exactly `tools`: `(id, key)`.
pub async fn key_for(
    app: &TestApp,
    service_user: &str,
    name: &str,
    tools: &[&str],
) -> (String, String) {
    let key = app
        .create_key(service_user, json!({"name": name, "allowed_tools": tools}))
        .await;
    (
        key["id"].as_str().expect("id").to_owned(),
        key["key"].as_str().expect("key").to_owned(),
    )
}
