//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`,
//! server scenarios, run by `tests/conformance/conformance.mjs`) against the
//! Python SDK server, directly and through the gateway with a key allowed
//! everything, for spec revisions 2025-06-18, 2025-11-25 and 2026-07-28. The
//! gateway may change no check's verdict. The server fails scenarios whose
//! fixtures it lacks (`test_image_content`, …) the same way on both paths, so
//! the comparison, not the pass count, is what this test holds.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use serde_json::Value;

use super::harness::{Gateway, Program, Upstream, conformance_dir};
use crate::both_engines;

/// Each revision and how the suite selects its scenarios: the scenarios the
/// 2026-07-28 release requires (header validation included); the active
/// suite filtered by version before it (no requirement set exists for them).
const REVISIONS: [(&str, &str); 3] = [
    ("2025-06-18", "--spec-version"),
    ("2025-11-25", "--spec-version"),
    ("2026-07-28", "--requirements"),
];

/// `scenario / check id / check name` → the statuses of the checks so named.
type Verdicts = BTreeMap<String, Vec<String>>;

/// Runs the suite's scenarios `selection` (its command-line options) against
/// `url`, with `key` added to the requests for the host of `url` when given.
async fn run_suite(url: &str, selection: &[&str], key: Option<&str>) -> Verdicts {
    let out = tempfile::tempdir().expect("temp dir");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(conformance_dir().join("conformance.mjs"))
        .args(["server", "--url", url])
        .args(selection)
        .arg("-o")
        .arg(out.path())
        .current_dir(conformance_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(key) = key {
        let host = url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .expect("http url");
        command
            .env("KEYSMITH_KEY", key)
            .env("KEYSMITH_KEY_HOST", host);
    }
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the suite ends within 5 minutes")
        .expect("node runs (scripts/test installs the harness)");
    let verdicts = read_verdicts(out.path());
    assert!(
        !verdicts.is_empty(),
        "no results for {selection:?} at {url}; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    verdicts
}

/// The checks of every `<out>/server-<scenario>-<timestamp>/checks.json`.
fn read_verdicts(out: &Path) -> Verdicts {
    let mut verdicts = Verdicts::new();
    for entry in std::fs::read_dir(out).expect("results directory") {
        let dir = entry.expect("entry").path();
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // The timestamp ends the name: 25 characters, -2026-12-07T07-02-38-101Z.
        let scenario = name
            .strip_prefix("server-")
            .and_then(|rest| rest.get(..rest.len().saturating_sub(25)))
            .unwrap_or(&name)
            .to_owned();
        let Ok(text) = std::fs::read_to_string(dir.join("checks.json")) else {
            continue;
        };
        let checks: Vec<Value> = serde_json::from_str(&text).expect("checks.json");
        for check in checks {
            let key = format!("{scenario} / {} / {}", check["id"], check["name"]);
            let status = check["status"].as_str().unwrap_or("?").to_owned();
            verdicts.entry(key).or_default().push(status);
        }
    }
    for statuses in verdicts.values_mut() {
        statuses.sort();
    }
    verdicts
}

/// Every check whose verdicts differ, with both.
fn differences(direct: &Verdicts, gateway: &Verdicts) -> Vec<String> {
    let keys: std::collections::BTreeSet<_> = direct.keys().chain(gateway.keys()).collect();
    keys.into_iter()
        .filter(|key| direct.get(*key) != gateway.get(*key))
        .map(|key| {
            format!(
                "{key}: direct {:?}, gateway {:?}",
                direct.get(key),
                gateway.get(key)
            )
        })
        .collect()
}

fn passed(verdicts: &Verdicts) -> usize {
    verdicts
        .values()
        .flatten()
        .filter(|s| *s == "SUCCESS")
        .count()
}

both_engines! {
    async fn the_gateway_changes_no_verdict_of_the_official_suite(app: TestApp) {
        let su = app.create_service_user("conformance-suite").await;
        let key = app.create_key(&su, serde_json::json!({})).await;
        let key = key["key"].as_str().expect("key").to_owned();
        let upstream = Upstream::start(Program::PyServer).await;
        let gateway = Gateway::start(&app, &upstream.base).await;
        let mut report = Vec::new();
        for revision in REVISIONS {
            let selection = [revision.1, revision.0];
            let direct = run_suite(&format!("{}/mcp", upstream.base), &selection, None).await;
            let through = run_suite(&gateway.mcp(), &selection, Some(&key)).await;
            let differ = differences(&direct, &through);
            assert!(
                differ.is_empty(),
                "{}: the gateway changed verdicts:\n{}",
                revision.0,
                differ.join("\n")
            );
            report.push(format!("{}: {} of {} checks pass on both paths", revision.0, passed(&direct), direct.values().flatten().count()));
        }
        eprintln!("{}", report.join("\n"));
        gateway.stop().await;
    }
}

/// `dns-rebinding-protection`: every check's statuses.
fn rebinding_statuses(verdicts: &Verdicts) -> Vec<&str> {
    verdicts
        .iter()
        .filter(|(check, _)| check.starts_with("dns-rebinding-protection / "))
        .flat_map(|(_, statuses)| statuses.iter().map(String::as_str))
        .collect()
}

both_engines! {
    // The case of the issue: the TypeScript SDK server, as `ts_server.mjs`
    // builds it, checks neither `Host` nor `Origin`, and the gateway sends it
    // its own `Host`; the suite's DNS-rebinding scenario passes through the
    // gateway all the same, because the gateway checks `Origin` itself.
    async fn the_gateway_stops_dns_rebinding_for_an_upstream_that_does_not(app: TestApp) {
        let su = app.create_service_user("conformance-suite").await;
        let key = app.create_key(&su, serde_json::json!({})).await;
        let key = key["key"].as_str().expect("key").to_owned();
        let upstream = Upstream::start(Program::TsServer).await;
        let gateway = Gateway::start(&app, &upstream.base).await;
        let selection = ["--scenario", "dns-rebinding-protection", "--spec-version", "2025-11-25"];
        let direct = run_suite(&format!("{}/mcp", upstream.base), &selection, None).await;
        assert!(rebinding_statuses(&direct).contains(&"FAILURE"), "the upstream has no defence of its own: {direct:?}");
        let through = run_suite(&gateway.mcp(), &selection, Some(&key)).await;
        let statuses = rebinding_statuses(&through);
        assert!(!statuses.is_empty() && statuses.iter().all(|s| *s == "SUCCESS"), "{through:?}");
        gateway.stop().await;
    }
}
