//! Tools listings are filtered by what an answer carries, whatever request
//! it answers (issue 28: a `ping` whose id collides with a `tools/list`'s
//! can receive its answer).

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

use super::{OneKey, post};
use crate::layer::{TenantScope, VerifyLayer};

const LISTING: &str =
    r#"{"jsonrpc":"2.0","id":502,"result":{"tools":[{"name":"echo"},{"name":"secret_admin"}]}}"#;

/// Sends `request` as the key allowed only `echo` to a service that answers
/// everything with `answer` as `content_type`; the status and the body.
async fn answered(
    request: Request<Full<Bytes>>,
    content_type: &'static str,
    answer: &'static str,
) -> (StatusCode, String) {
    let inner = service_fn(move |_: Request<Full<Bytes>>| async move {
        let response = Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from_static(answer.as_bytes())))
            .expect("response");
        Ok::<_, Infallible>(response)
    });
    let layer = VerifyLayer::builder(OneKey, TenantScope::only("acme")).build();
    let response = layer
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

const PING: &[u8] = br#"{"jsonrpc":"2.0","id":"502","method":"ping"}"#;

#[tokio::test]
async fn an_answer_to_a_ping_that_lists_tools_is_filtered() {
    let sse: &'static str = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":502,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"secret_admin\"}]}}\n\n";
    for (content_type, answer) in [("application/json", LISTING), ("text/event-stream", sse)] {
        let (status, body) = answered(post("application/json", PING), content_type, answer).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.contains("secret_admin"), "{content_type}: {body}");
        assert!(
            body.contains(r#"{"name":"echo"}"#),
            "{content_type}: {body}"
        );
    }
}

#[tokio::test]
async fn listings_are_found_however_a_lenient_client_would_read_them() {
    for answer in [
        // Go's decoder matches member names in any case, ſ and K included.
        r#"{"jsonrpc":"2.0","id":1,"Result":{"TOOLſ":[{"name":"secret_admin"}]}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret_admin"}]}}]"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","Name":"secret_admin"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"Name":"secret_admin"}]}}"#,
        // Not JSON to the layer: never passed on.
        "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret_admin\"}]}}",
    ] {
        let (_, body) = answered(post("application/json", PING), "application/json", answer).await;
        assert!(!body.contains("secret_admin"), "{answer}: {body}");
    }
}

#[tokio::test]
async fn answers_without_a_listing_pass_as_they_came() {
    // A notification's answer, a message without a result, a priming event.
    let request = || post("application/json", PING);
    assert_eq!(answered(request(), "application/json", "").await.1, "");
    let message = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"z":1,"a":2}}"#;
    assert_eq!(
        answered(request(), "application/json", message).await.1,
        message
    );
    let priming = "id: 7\ndata: \n\n";
    let (_, body) = answered(request(), "text/event-stream", priming).await;
    assert_eq!(body, priming);
}
