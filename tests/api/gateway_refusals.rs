//! Every refusal of a genuine key is in its audit trail (issue 28): through
//! the real gateway, each request a valid key makes that the layer refuses
//! leaves exactly one audit row with the reason; a request without a valid
//! key leaves none, and is counted in the layer's metrics instead.

use reqwest::{RequestBuilder, StatusCode};
use serde_json::json;

use crate::{
    both_engines,
    conformance::harness::{Gateway, audit_rows, key_for},
    gateway::plain_upstream,
    health::{metrics_text, sample},
    helpers::TestApp,
    mcp::tool_call,
};

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// One refusal class: what is sent, and what the layer must answer and audit.
struct Case {
    what: &'static str,
    request: fn(RequestBuilder) -> RequestBuilder,
    status: StatusCode,
    reason: &'static str,
}

impl Case {
    /// What a request without a usable key is answered: the `Origin`
    /// check's refusal is the answer whatever the key.
    fn without_key(&self) -> StatusCode {
        if self.reason == "origin_not_allowed" {
            self.status
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
}

fn json_body(request: RequestBuilder, body: &'static str) -> RequestBuilder {
    request
        .header("content-type", "application/json")
        .body(body)
}

/// Every class of refusal a valid key can meet in MCP mode, but limits
/// (a key of their own, below).
fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "a duplicate member",
            request: |r| {
                json_body(
                    r,
                    r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
                )
            },
            status: StatusCode::BAD_REQUEST,
            reason: "bad_request",
        },
        Case {
            what: "a batch",
            request: |r| json_body(r, r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#),
            status: StatusCode::BAD_REQUEST,
            reason: "bad_request",
        },
        Case {
            what: "a gzip body",
            request: |r| json_body(r, LIST).header("content-encoding", "gzip"),
            status: StatusCode::BAD_REQUEST,
            reason: "bad_request",
        },
        Case {
            what: "a body over the cap",
            request: |r| {
                r.header("content-type", "application/json")
                    .body(vec![b' '; 1024 * 1024 + 1])
            },
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: "too_large",
        },
        Case {
            what: "an Mcp-Method the body does not bear out",
            request: |r| json_body(r, LIST).header("mcp-method", "tools/call"),
            status: StatusCode::BAD_REQUEST,
            reason: "header_mismatch",
        },
        Case {
            what: "two Mcp-Session-Id headers",
            request: |r| {
                json_body(r, LIST)
                    .header("mcp-session-id", "a")
                    .header("mcp-session-id", "b")
            },
            status: StatusCode::BAD_REQUEST,
            reason: "bad_request",
        },
        Case {
            what: "a session never issued",
            request: |r| json_body(r, LIST).header("mcp-session-id", "made-up"),
            status: StatusCode::NOT_FOUND,
            reason: "session_not_found",
        },
        Case {
            what: "a foreign Origin",
            request: |r| json_body(r, LIST).header("origin", "https://evil.example.com"),
            status: StatusCode::FORBIDDEN,
            reason: "origin_not_allowed",
        },
        Case {
            what: "a tool outside the allowlist",
            request: |r| r.json(&tool_call(2, "secret_admin")),
            status: StatusCode::FORBIDDEN,
            reason: "tool_not_allowed",
        },
    ]
}

/// A POST to the gateway's MCP endpoint with `key`, if any.
fn post(gateway: &Gateway, key: Option<&str>) -> RequestBuilder {
    let request = reqwest::Client::new()
        .post(gateway.mcp())
        .header("accept", "application/json, text/event-stream");
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

async fn all_audit_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call'")
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

/// The layer's request count with `outcome`, in this process's recorder.
async fn outcome_count(app: &TestApp, outcome: &str) -> f64 {
    let text = metrics_text(app).await;
    sample(
        &text,
        "keysmith_layer_requests_total",
        &[&format!("outcome=\"{outcome}\"")],
    )
    .unwrap_or(0.0)
}

both_engines! {
    async fn every_refusal_of_a_valid_key_is_audited_once_with_its_reason(app: TestApp) {
        keysmith::metrics::recorder();
        let su = app.create_service_user("prober").await;
        let (key_id, key) = key_for(&app, &su, "probe", &["whoami"]).await;
        let limited = app.create_key(&su, json!({"rate_limit": {"per_minute": 1}})).await;
        let (limited_id, limited) = (limited["id"].as_str().expect("id"), limited["key"].as_str().expect("key"));
        let upstream = plain_upstream().await;
        let gateway = Gateway::start(&app, &upstream).await;

        let cases = cases();
        for case in &cases {
            let response = (case.request)(post(&gateway, Some(&key))).send().await.expect("send");
            assert_eq!(response.status(), case.status, "{}", case.what);
        }
        for expected in [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
            let response = post(&gateway, Some(limited)).json(&tool_call(3, "whoami")).send().await.expect("send");
            assert_eq!(response.status(), expected);
        }
        // Without a valid key: refused as before, audited nowhere.
        let (missing, unknown) = (outcome_count(&app, "missing_key").await, outcome_count(&app, "not_found").await);
        let foreign = outcome_count(&app, "origin_not_allowed").await;
        for case in &cases {
            for key in [None, Some("garbage")] {
                let response = (case.request)(post(&gateway, key)).send().await.expect("send");
                assert_eq!(response.status(), case.without_key(), "{} with {key:?}", case.what);
            }
        }
        gateway.stop().await;

        let rows = audit_rows(&app, &key_id).await;
        let reasons: Vec<&str> = rows.iter().map(|(_, _, reason)| reason.as_str()).collect();
        let expected: Vec<&str> = cases.iter().map(|case| case.reason).collect();
        assert_eq!(reasons, expected, "one row per refusal, with its reason: {rows:?}");
        assert!(rows.iter().all(|(_, outcome, _)| outcome == "denied"), "{rows:?}");
        assert_eq!(rows[0].0, "POST /mcp", "a body not read is named by its request");
        assert_eq!(rows[7].0, "tools/list", "the foreign page's call is named: {rows:?}");
        assert_eq!(rows[8].0, "secret_admin", "{rows:?}");
        let limited_reasons: Vec<String> = audit_rows(&app, limited_id).await.into_iter().map(|(_, _, reason)| reason).collect();
        assert_eq!(limited_reasons, ["valid", "rate_limited"]);
        assert_eq!(all_audit_rows(&app).await, (cases.len() + 2) as i64, "no key, no row");
        // Counted in the process-wide recorder, which other tests share: at least ours.
        // The Origin refusal is counted as what was answered, not by the key.
        let n = (cases.len() - 1) as f64;
        assert!(outcome_count(&app, "missing_key").await - missing >= n);
        assert!(outcome_count(&app, "not_found").await - unknown >= n);
        assert!(outcome_count(&app, "origin_not_allowed").await - foreign >= 2.0);
    }
}
