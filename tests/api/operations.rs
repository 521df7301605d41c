//! What an operator reads: log lines (text without escape codes when
//! redirected, or JSON), the access log, HTTP and build-info metrics, and
//! the build a binary says it is.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{both_engines, child::Running};

/// The commit this tree is at, as the build script reads it.
fn head_commit() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert!(out.status.success(), "git rev-parse failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Waits (bounded) until the process has logged a line containing `needle`.
async fn logs_with(server: &Running, needle: &str) -> String {
    for _ in 0..100 {
        let logs = server.logs();
        if logs.contains(needle) {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no log line with {needle:?}:\n{}", server.logs());
}

both_engines! {
    async fn json_logs_are_one_object_a_line_naming_routes_never_paths(app: TestApp) {
        let server = Running::serve(&app, &[("KEYSMITH_LOG_FORMAT", "json")]);
        // An email in the path and a token in the query: neither may be logged.
        let res = app
            .client
            .put(format!("{}/api/v1/tenants/acme/admins/hidden.person%40example.test?token=sekrit-in-query", server.base))
            .bearer_auth(&app.admin_key)
            .json(&serde_json::json!({"role": "viewer"}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "not a member of the tenant");
        let logs = logs_with(&server, "\"route\":\"/api/v1/tenants/{tenant}/admins/{email}\"").await;

        let lines: Vec<Value> = logs
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")))
            .collect();
        let access = lines
            .iter()
            .find(|line| line["target"] == "keysmith::access" && line["route"] == "/api/v1/tenants/{tenant}/admins/{email}")
            .expect("an access line");
        assert_eq!(access["method"], "PUT");
        assert_eq!(access["status"], 404);
        assert_eq!(access["level"], "INFO");
        assert!(access["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{access}");
        assert!(access["span"]["request_id"].as_str().is_some_and(|id| id.len() == 20), "{access}");
        for secret in ["hidden.person", "sekrit-in-query", &app.admin_key] {
            assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
        }
    }

    async fn text_logs_into_a_file_hold_no_escape_codes(app: TestApp) {
        let server = Running::serve(&app, &[]);
        let res = app.client.get(format!("{}/healthz", server.base)).send().await.expect("healthz");
        assert_eq!(res.status(), StatusCode::OK);
        let logs = logs_with(&server, "route=/healthz").await;
        assert!(!logs.contains('\u{1b}'), "ANSI escapes in redirected logs:\n{logs}");
        assert!(logs.contains("keysmith::access"), "{logs}");
    }

    async fn metrics_count_requests_by_route_and_name_the_build(app: TestApp) {
        let res = app.get("/api/v1/tenants/acme/keys/ks_not_a_key_id").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.client.get(app.url("/api/v1/tenants/acme/invitations/leaky.person%40example.test")).send().await.expect("request");
        assert!(res.status().is_client_error(), "{}", res.status());
        let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        assert!(
            metrics.contains("http_requests_total{method=\"GET\",route=\"/api/v1/tenants/{tenant}/keys/{id}\",status=\"404\"}"),
            "{metrics}"
        );
        assert!(
            metrics.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/tenants/{tenant}/keys/{id}\",status=\"404\",le=\"0.005\"}"),
            "a histogram with buckets: {metrics}"
        );
        assert!(!metrics.contains("leaky.person"), "a raw path reached the metrics");
        assert!(!metrics.contains("ks_not_a_key_id"), "a raw path reached the metrics");
        let commit = head_commit();
        assert!(
            metrics.lines().any(|line| line.starts_with("keysmith_build_info{") && line.contains(&format!("commit=\"{commit}\"")) && line.ends_with(" 1")),
            "build info for {commit}: {metrics}"
        );
    }
}

#[test]
fn version_names_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("--version")
        .output()
        .expect("keysmith --version");
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        version.starts_with(&format!("keysmith {} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains(&head_commit()), "{version}");
}

#[test]
fn an_unknown_log_format_stops_the_command_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("migrate")
        .env("KEYSMITH_DATA_DIR", dir.path())
        .env_remove("KEYSMITH_DATABASE_URL")
        .env("KEYSMITH_LOG_FORMAT", "xml")
        .output()
        .expect("keysmith migrate");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("KEYSMITH_LOG_FORMAT") && stderr.contains("json"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing created"
    );
}

/// `keysmith healthcheck` (the image's HEALTHCHECK) on a running server: 0;
/// on a port nobody serves: a failure naming the address. Neither opens a database.
mod healthcheck {
    use super::*;
    use crate::helpers::{ClosedPort, Engine, TestApp};

    fn healthcheck(bind: &str, data_dir: &std::path::Path) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
            .arg("healthcheck")
            .env("KEYSMITH_BIND", bind)
            .env("KEYSMITH_DATA_DIR", data_dir)
            .env_remove("KEYSMITH_DATABASE_URL")
            .output()
            .expect("keysmith healthcheck")
    }

    #[tokio::test]
    async fn healthy_server_then_none() {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let server = Running::serve(&app, &[]);
        let empty = tempfile::tempdir().expect("tmp");
        let port = server
            .addr
            .rsplit_once(':')
            .expect("host:port")
            .1
            .to_owned();
        // Bound to every address, as in the image: asked on loopback.
        let out = healthcheck(&format!("0.0.0.0:{port}"), empty.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let closed = ClosedPort::bind();
        let out = healthcheck(&closed.addr().to_string(), empty.path());
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("/healthz did not answer") && stderr.contains("KEYSMITH_BIND"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_dir(empty.path()).expect("dir").count(),
            0,
            "no database created"
        );
    }
}
