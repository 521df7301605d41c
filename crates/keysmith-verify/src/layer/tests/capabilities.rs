//! Resources, prompts and completions outside the key's allowlists are
//! refused before the service runs (issue 28: a key allowed one tool read
//! every resource); what is allowed goes on untouched.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{Layer, ServiceExt};

use super::{OneKey, send};
use crate::layer::{TenantScope, VerifyLayer};

fn post(body: String) -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

fn request(method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{params}}}"#)
}

fn read(uri: &str) -> String {
    request(
        "resources/read",
        &serde_json::json!({ "uri": uri }).to_string(),
    )
}

/// The status, and whether the service saw the request.
async fn outcome(body: String) -> (StatusCode, bool) {
    let (status, received) = send(TenantScope::only("acme"), post(body)).await;
    (status, received.is_some())
}

#[tokio::test]
async fn what_the_key_names_goes_on() {
    for body in [
        read("test://static-text"),
        read("file:///public/a%20b.txt"),
        request("resources/subscribe", r#"{"uri":"file:///public/x"}"#),
        request("resources/unsubscribe", r#"{"uri":"file:///public/x"}"#),
        request("prompts/get", r#"{"name":"Hello"}"#),
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"Hello"},"argument":{"name":"a","value":""}}"#,
        ),
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/resource","uri":"file:///public/{name}"},"argument":{"name":"name","value":""}}"#,
        ),
        request("resources/list", "{}"),
        request("prompts/list", "{}"),
    ] {
        assert_eq!(
            outcome(body.clone()).await,
            (StatusCode::OK, true),
            "{body}"
        );
    }
}

#[tokio::test]
async fn what_the_key_does_not_name_never_reaches_the_service() {
    let forbidden = [
        read("test://other"),
        read("file:///public/../secret"),
        read("file:///public/%2e%2e/secret"),
        read("file:///public/..%5csecret"),
        read("file:///public/..\\secret"),
        read("file:///public//etc/passwd"),
        read("file:///public/%252e%252e/secret"),
        request("resources/read", r#"{}"#),
        request("resources/read", r#"{"uri":7}"#),
        request("resources/subscribe", r#"{"uri":"file:///secret"}"#),
        request("resources/unsubscribe", r#"{"uri":"file:///secret"}"#),
        request("prompts/get", r#"{"name":"Goodbye"}"#),
        request("prompts/get", r#"{"Name":"Hello"}"#),
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"Goodbye"}}"#,
        ),
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/resource","uri":"file:///secret/{x}"}}"#,
        ),
        // The type names an allowed prompt; the URI an upstream may read is not allowed.
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"Hello","uri":"file:///secret"}}"#,
        ),
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/resource","uri":"file:///public/x","name":"Goodbye"}}"#,
        ),
    ];
    for body in forbidden {
        assert_eq!(
            outcome(body.clone()).await,
            (StatusCode::FORBIDDEN, false),
            "{body}"
        );
    }
    let malformed = [
        read("file:///public/a\u{0}"),
        read(&format!("file:///public/{}", "a".repeat(2048))),
        request(
            "completion/complete",
            r#"{"ref":{"type":"ref/tool","name":"echo"}}"#,
        ),
        request(
            "completion/complete",
            r#"{"argument":{"name":"a","value":""}}"#,
        ),
        request("Resources/Read", r#"{"uri":"test://static-text"}"#),
    ];
    for body in malformed {
        assert_eq!(
            outcome(body.clone()).await,
            (StatusCode::BAD_REQUEST, false),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_refusal_answers_the_request_and_names_what_was_refused() {
    let (status, received) = send(TenantScope::only("acme"), post(read("test://other"))).await;
    assert_eq!((status, received.is_none()), (StatusCode::FORBIDDEN, true));
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    });
    let layer = VerifyLayer::builder(OneKey, TenantScope::only("acme")).build();
    let response = layer
        .layer(inner)
        .oneshot(post(read("test://other")))
        .await
        .expect("infallible");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(
        body["error"]["message"],
        "this API key may not use the resource `test://other`"
    );
}
