//! The real `keysmith` binary as a child process, for what only a process
//! shows: its open-file limit, its command line.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use crate::helpers::TestApp;

/// A running `keysmith serve` or `keysmith gateway`, killed when dropped.
pub struct Running {
    child: Child,
    /// `http://<address it listens on>`.
    pub base: String,
    /// The address alone, for raw connections.
    pub addr: String,
    logs: Arc<Mutex<String>>,
}

impl Running {
    /// `keysmith gateway --upstream <upstream> --tenant acme --bind
    /// 127.0.0.1:0 <args>` on `app`'s database and pepper, with at most
    /// `nofile` (`soft:hard`, through `prlimit`) open files when given.
    pub fn gateway(
        app: &TestApp,
        upstream: &str,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<&str>,
    ) -> Self {
        let binary = env!("CARGO_BIN_EXE_keysmith");
        let mut command = match nofile {
            Some(limits) => {
                let mut prlimit = Command::new("prlimit");
                prlimit
                    .arg(format!("--nofile={limits}"))
                    .arg("--")
                    .arg(binary);
                prlimit
            }
            None => Command::new(binary),
        };
        command
            .args([
                "gateway",
                "--upstream",
                upstream,
                "--tenant",
                app.tenant.slug.as_str(),
            ])
            .args(args);
        if !args.contains(&"--bind") {
            command.args(["--bind", "127.0.0.1:0"]);
        }
        Self::start_on(app, command, env)
    }

    /// `keysmith serve` on `app`'s database and pepper, bound to a free
    /// port, with `env` added (`KEYSMITH_LOG_FORMAT=json` is understood).
    pub fn serve(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keysmith"));
        command.arg("serve").env("KEYSMITH_BIND", "127.0.0.1:0");
        Self::start_on(app, command, env)
    }

    /// `keysmith serve` on the database at `url` with its data (and pepper)
    /// in `dir`: a database no TestApp made, such as a restored one.
    pub fn serve_database(url: &str, dir: &std::path::Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keysmith"));
        command.arg("serve").env("KEYSMITH_BIND", "127.0.0.1:0");
        Self::start_at(url, dir, command, &[])
    }

    /// Starts `command` on `app`'s database and pepper, with `env` added.
    fn start_on(app: &TestApp, command: Command, env: &[(&str, &str)]) -> Self {
        Self::start_at(&app.db.url, app.db.dir.path(), command, env)
    }

    fn start_at(
        url: &str,
        dir: &std::path::Path,
        mut command: Command,
        env: &[(&str, &str)],
    ) -> Self {
        command
            .env("KEYSMITH_DATABASE_URL", url)
            .env("KEYSMITH_DATA_DIR", dir)
            .env("KEYSMITH_PEPPER_FILE", dir.join("pepper"))
            .env_remove("KEYSMITH_REDIS_URL");
        for (name, value) in env {
            command.env(name, value);
        }
        Self::start(command)
    }

    /// Starts `command` and waits for the log line that names the address
    /// it accepts connections on, and the limits it holds them to.
    fn start(mut command: Command) -> Self {
        let mut child = command
            .env("KEYSMITH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start keysmith");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (listening, addr) = mpsc::channel();
        let kept = Arc::clone(&logs);
        // Read to the end, so a full pipe never blocks the child.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                {
                    let mut logs = kept.lock().unwrap_or_else(|p| p.into_inner());
                    logs.push_str(&line);
                    logs.push('\n');
                }
                // Logged by the accept loop itself, just before it accepts.
                if line.contains("connection limits")
                    && let Some(addr) = listening_addr(&line)
                {
                    let _ = listening.send(addr);
                }
            }
        });
        let Ok(addr) = addr.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            let logs = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
            panic!("keysmith did not start listening:\n{logs}");
        };
        Self {
            child,
            base: format!("http://{addr}"),
            addr,
            logs,
        }
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends SIGTERM (the graceful stop) without waiting for the exit.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "SIGTERM not sent");
    }

    /// Waits (30 s at most) for the process to exit; its status.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("still running after 30 s:\n{}", self.logs());
    }
}

/// The `addr` field of the accept loop's line, as text (`addr=…`) or JSON
/// (`"addr":"…"`).
fn listening_addr(line: &str) -> Option<String> {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(line) {
        return fields.get("addr")?.as_str().map(str::to_owned);
    }
    let (_, rest) = line.split_once("addr=")?;
    rest.split_whitespace().next().map(str::to_owned)
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills `child`'s whole process group (it was started with
/// `process_group(0)`: the group holds every process it started), then
/// reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Asserts a finished process succeeded, showing its stderr when not.
#[track_caller]
pub fn assert_ran(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
