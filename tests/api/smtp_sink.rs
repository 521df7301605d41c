//! A real SMTP server process (Python `aiosmtpd`) that keeps what it receives.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

/// The port is the OS's choice and stays held by the sink process from the
/// moment it is known, so no other test can take it in between.
pub struct SmtpSink {
    child: Child,
    control: ChildStdin,
    output: BufReader<ChildStdout>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// A server accepting mail.
    pub fn start() -> Self {
        let mut sink = Self::down();
        sink.come_up();
        sink
    }

    /// A server that is down (its port is bound but refuses connections)
    /// until [`come_up`](Self::come_up): for "SMTP server down, then back".
    pub fn down() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let control = child.stdin.take().expect("stdin");
        let mut output = BufReader::new(child.stdout.take().expect("stdout"));
        let line = read_line(&mut output);
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the SMTP sink did not start (is aiosmtpd installed? scripts/test installs it): {line:?}"
                )
            });
        Self {
            child,
            control,
            output,
            port,
            dir,
        }
    }

    /// Starts accepting on the held port; returns once connections are accepted.
    pub fn come_up(&mut self) {
        writeln!(self.control, "listen").expect("tell the sink to listen");
        self.control.flush().expect("flush");
        let line = read_line(&mut self.output);
        assert_eq!(line, "ready", "the SMTP sink did not start listening");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut paths: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read message"))
            .collect()
    }
}

fn read_line(output: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    output.read_line(&mut line).expect("read the sink's output");
    line.trim().to_owned()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The decoded text of a message: quoted-printable soft breaks and escapes undone,
/// so assertions can look for phrases.
pub fn decoded(raw: &str) -> String {
    let mut out = Vec::new();
    let bytes = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = bytes.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
