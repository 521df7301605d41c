//! Every capability allowlisted (issue 28): through the real gateway, in
//! front of the official Python and TypeScript SDK servers of
//! `tests/conformance`, a key reaches only the resources and prompts it
//! names (a key allowed one tool read every resource before), sees only
//! them listed, and a URI that could mean another file upstream is refused
//! before the upstream reads it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    conformance::harness::{Gateway, Program, Upstream, audit_rows},
    helpers::TestApp,
};

/// One JSON-RPC request through the gateway: the status and the message
/// answered (JSON, or the data of the SSE event that answers).
async fn rpc(gateway: &Gateway, key: &str, method: &str, params: Value) -> (StatusCode, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params});
    let response = reqwest::Client::new()
        .post(gateway.mcp())
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let text = response.text().await.expect("body");
    let message = serde_json::from_str(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|m| m.get("id").is_some())
    });
    (
        status,
        message.unwrap_or_else(|| panic!("{method}: no message in {text}")),
    )
}

/// The names (or URIs) a listing answered.
async fn listed(
    gateway: &Gateway,
    key: &str,
    method: &str,
    listing: &str,
    named_by: &str,
) -> Vec<String> {
    let (status, answer) = rpc(gateway, key, method, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{method}: {answer}");
    let mut names: Vec<String> = answer["result"][listing]
        .as_array()
        .unwrap_or_else(|| panic!("{method}: {answer}"))
        .iter()
        .filter_map(|entry| entry[named_by].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The resources, resource templates and prompts listed.
async fn listings(gateway: &Gateway, key: &str) -> [Vec<String>; 3] {
    [
        listed(gateway, key, "resources/list", "resources", "uri").await,
        listed(
            gateway,
            key,
            "resources/templates/list",
            "resourceTemplates",
            "uriTemplate",
        )
        .await,
        listed(gateway, key, "prompts/list", "prompts", "name").await,
    ]
}

fn read(uri: &str) -> Value {
    json!({"uri": uri})
}

fn complete_prompt(name: &str) -> Value {
    json!({"ref": {"type": "ref/prompt", "name": name}, "argument": {"name": "name", "value": "Al"}})
}

fn complete_resource(uri: &str) -> Value {
    json!({"ref": {"type": "ref/resource", "uri": uri}, "argument": {"name": "name", "value": "rea"}})
}

/// Refused by the layer: 403 with a JSON-RPC error answering the request.
fn assert_refused(label: &str, (status, answer): &(StatusCode, Value)) {
    assert_eq!(*status, StatusCode::FORBIDDEN, "{label}: {answer}");
    assert_eq!(answer["id"], 9, "{label}: {answer}");
    assert_eq!(answer["error"]["code"], -32001, "{label}: {answer}");
}

/// What the upstream read (`read:<uri>` lines of its log).
fn reads(upstream: &Upstream) -> Vec<String> {
    upstream
        .ran()
        .into_iter()
        .filter_map(|(what, _)| what.strip_prefix("read:").map(str::to_owned))
        .collect()
}

const SERVERS: [Program; 2] = [Program::PyServer, Program::TsServer];

async fn tools_only_key_reaches_nothing_else(app: &TestApp, program: Program) {
    let su = app
        .create_service_user(&format!("tools-{program:?}").to_lowercase())
        .await;
    let key = app
        .create_key(&su, json!({"allowed_tools": ["echo"]}))
        .await;
    let (id, key) = (
        key["id"].as_str().expect("id"),
        key["key"].as_str().expect("key"),
    );
    let upstream = Upstream::start(program).await;
    let gateway = Gateway::start(app, &upstream.base).await;

    assert_refused(
        "resources/read",
        &rpc(&gateway, key, "resources/read", read("test://static-text")).await,
    );
    assert_refused(
        "prompts/get",
        &rpc(
            &gateway,
            key,
            "prompts/get",
            json!({"name": "test_simple_prompt"}),
        )
        .await,
    );
    assert_refused(
        "complete a prompt",
        &rpc(
            &gateway,
            key,
            "completion/complete",
            complete_prompt("greeting"),
        )
        .await,
    );
    assert_refused(
        "complete a resource",
        &rpc(
            &gateway,
            key,
            "completion/complete",
            complete_resource("file:///public/{name}"),
        )
        .await,
    );
    assert_refused(
        "subscribe",
        &rpc(
            &gateway,
            key,
            "resources/subscribe",
            read("test://static-text"),
        )
        .await,
    );
    assert_eq!(
        listings(&gateway, key).await,
        [Vec::<String>::new(), vec![], vec![]],
        "no resource, template or prompt listed"
    );
    assert_eq!(
        listed(&gateway, key, "tools/list", "tools", "name").await,
        ["echo"]
    );
    assert!(
        reads(&upstream).is_empty(),
        "{program:?} read {:?}",
        reads(&upstream)
    );

    gateway.stop().await;
    let rows = audit_rows(app, id).await;
    let denied = |method: &str, reason: &str| {
        rows.iter()
            .filter(|(t, o, r)| t == method && o == "denied" && r == reason)
            .count()
    };
    assert_eq!(
        denied("resources/read", "resource_not_allowed"),
        1,
        "{rows:?}"
    );
    assert_eq!(
        denied("resources/subscribe", "resource_not_allowed"),
        1,
        "{rows:?}"
    );
    assert_eq!(denied("prompts/get", "prompt_not_allowed"), 1, "{rows:?}");
    assert_eq!(
        denied("completion/complete", "prompt_not_allowed"),
        1,
        "{rows:?}"
    );
    assert_eq!(
        denied("completion/complete", "resource_not_allowed"),
        1,
        "{rows:?}"
    );
}

async fn named_resources_and_prompts_only(app: &TestApp, program: Program) {
    let su = app
        .create_service_user(&format!("reader-{program:?}").to_lowercase())
        .await;
    let key = app
        .create_key(&su, json!({"allowed_tools": ["echo"], "allowed_resources": ["test://static-text", "file:///public/*"], "allowed_prompts": ["greeting"]}))
        .await;
    let key = key["key"].as_str().expect("key");
    let upstream = Upstream::start(program).await;
    let gateway = Gateway::start(app, &upstream.base).await;

    assert_eq!(
        listings(&gateway, key).await,
        [
            vec!["file:///public/readme.txt", "test://static-text"],
            vec!["file:///public/{name}"],
            vec!["greeting"]
        ]
    );

    for uri in [
        "file:///public/readme.txt",
        "test://static-text",
        "file:///public/notes.txt",
    ] {
        let (status, answer) = rpc(&gateway, key, "resources/read", read(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
        assert_eq!(answer["result"]["contents"][0]["uri"], uri, "{answer}");
    }
    let (status, answer) = rpc(
        &gateway,
        key,
        "prompts/get",
        json!({"name": "greeting", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.to_string().contains("Hello, Ada!"), "{answer}");
    for params in [
        complete_prompt("greeting"),
        complete_resource("file:///public/{name}"),
    ] {
        let (status, answer) = rpc(&gateway, key, "completion/complete", params.clone()).await;
        assert_eq!(status, StatusCode::OK, "{params}: {answer}");
        assert!(
            answer["result"]["completion"]["values"][0]
                .as_str()
                .is_some_and(|v| v.ends_with("-completed")),
            "{params}: {answer}"
        );
    }
    let before = reads(&upstream);

    assert_refused(
        "secret prompt",
        &rpc(
            &gateway,
            key,
            "prompts/get",
            json!({"name": "secret_prompt"}),
        )
        .await,
    );
    assert_refused(
        "complete secret template",
        &rpc(
            &gateway,
            key,
            "completion/complete",
            complete_resource("file:///secret/{name}"),
        )
        .await,
    );
    let refused_uris = [
        "file:///secret/passwd",
        "file:///public/../secret/passwd",
        "file:///public/%2e%2e/secret/passwd",
        "file:///public/%2E%2E%2Fsecret%2Fpasswd",
        "file:///public/..%2fsecret%2fpasswd",
        "file:///public/..%5csecret%5cpasswd",
        "file:///public/..\\secret\\passwd",
        "file:///public/%252e%252e/secret/passwd",
        "file:///public//secret/passwd",
        "file:///public/./../secret/passwd",
        "file:///public/passwd?../../secret/passwd",
        "file:///public/\u{ff0e}\u{ff0e}/secret/passwd",
    ];
    for uri in refused_uris {
        assert_refused(uri, &rpc(&gateway, key, "resources/read", read(uri)).await);
    }
    // A control character or an endless URI is read by no upstream, whatever the key.
    for uri in [
        "file:///public/a\u{0}b".to_owned(),
        format!("file:///public/{}", "a".repeat(2048)),
    ] {
        let (status, answer) = rpc(&gateway, key, "resources/read", read(&uri)).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(-32602)),
            "{answer}"
        );
    }
    assert_eq!(
        reads(&upstream),
        before,
        "{program:?}: no refused URI was read"
    );
    gateway.stop().await;
}

both_engines! {
    async fn a_key_that_names_only_tools_reaches_no_resource_or_prompt(app: TestApp) {
        for program in SERVERS {
            tools_only_key_reaches_nothing_else(&app, program).await;
        }
    }

    async fn a_key_reaches_and_sees_only_the_resources_and_prompts_it_names(app: TestApp) {
        for program in SERVERS {
            named_resources_and_prompts_only(&app, program).await;
        }
    }
}
