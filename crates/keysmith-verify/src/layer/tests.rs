//! The service end to end with `oneshot`: what reaches the inner service,
//! byte for byte, and what never does.

mod capabilities;
mod guard;
mod listing;
mod session;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

use super::{TenantScope, VerifyLayer};
use crate::{
    allowlist::{Allowlist, Capabilities},
    backend::{VerdictFuture, Verifier},
    outcome::{Refusal, VerifiedKey, VerifyCode},
    timestamp,
};

/// "good" is a key of tenant acme allowed only the tool `echo`, the
/// resources `test://static-text` and `file:///public/*`, and the prompt
/// `Hello`; anything else is unknown.
#[derive(Debug)]
pub(super) struct OneKey;

impl Verifier for OneKey {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        let verdict = if presented == "good" {
            Ok(good_key())
        } else {
            Err(Refusal {
                code: VerifyCode::NotFound,
                key_id: None,
                known: None,
            })
        };
        Box::pin(async move { Ok(verdict) })
    }
}

/// The key "good" verifies as.
pub(super) fn good_key() -> VerifiedKey {
    VerifiedKey {
        key_id: "k1".into(),
        tenant_id: "t1".into(),
        tenant_slug: "acme".into(),
        service_user_id: "s1".into(),
        service_user_name: "bot".into(),
        valid_until: timestamp::from_unix(4_000_000_000),
        scopes: vec![],
        allowed: Capabilities::new(
            Allowlist::from_list(&["echo"]).expect("valid"),
            Allowlist::from_list(&["test://static-text", "file:///public/*"]).expect("valid"),
            Allowlist::from_list(&["Hello"]).expect("valid"),
        ),
        limits: Default::default(),
        token: None,
    }
}

type Seen = Arc<Mutex<Vec<(http::HeaderMap, Bytes)>>>;

/// Sends `request` through an MCP-mode layer for `scope`; the status, and
/// what the inner service received (headers and body), if anything.
pub(super) async fn send(
    scope: TenantScope,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Option<(http::HeaderMap, Bytes)>) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let inner = service_fn(move |request: Request<Full<Bytes>>| {
        let record = record.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.expect("body").to_bytes();
            record.lock().expect("lock").push((parts.headers, bytes));
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        }
    });
    let layer = VerifyLayer::builder(OneKey, scope).build();
    let response = layer
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let received = seen.lock().expect("lock").pop();
    (status, received)
}

pub(super) fn post(content_type: &'static str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from_static(body)))
        .expect("request")
}

pub(super) const ECHO: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\u00e9"}}}"#;
const SECRET: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret_admin"}}"#;

#[tokio::test]
async fn the_bytes_judged_are_the_bytes_forwarded() {
    let (status, received) = send(
        TenantScope::only("acme"),
        post("Application/JSON; charset=UTF-8", ECHO),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (headers, body) = received.expect("forwarded");
    assert_eq!(body, Bytes::from_static(ECHO));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        ECHO.len().to_string().as_str()
    );
    assert_eq!(headers["x-keysmith-service-user"], "bot");
    assert!(!headers.contains_key(header::AUTHORIZATION));
}

#[tokio::test]
async fn what_cannot_be_read_one_way_never_reaches_the_service() {
    let refused: Vec<Request<Full<Bytes>>> = vec![
        // The original report: a refused tool under another spelling of the media type.
        post("Application/JSON", SECRET),
        post("text/plain", ECHO),
        post("application/json; charset=utf-16", ECHO),
        post("application/json", b"not json"),
        post("application/json", b"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}"),
        post("application/json", br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"secret_admin"}}"#),
        Request::put("/mcp")
            .header(header::AUTHORIZATION, "Bearer good")
            .body(Full::new(Bytes::from_static(SECRET)))
            .expect("request"),
        Request::post("/mcp")
            .header(header::AUTHORIZATION, "Bearer good")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Full::new(Bytes::from_static(ECHO)))
            .expect("request"),
        Request::post("/mcp")
            .header(header::AUTHORIZATION, "Bearer good")
            .header(header::CONTENT_TYPE, "application/json")
            .header("mcp-name", "secret_admin")
            .body(Full::new(Bytes::from_static(ECHO)))
            .expect("request"),
    ];
    for (i, request) in refused.into_iter().enumerate() {
        let (status, received) = send(TenantScope::only("acme"), request).await;
        assert!(received.is_none(), "case {i} reached the service");
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::FORBIDDEN,
            "case {i}: {status}"
        );
    }
    let (status, received) =
        send(TenantScope::only("acme"), post("application/json", SECRET)).await;
    assert_eq!((status, received.is_none()), (StatusCode::FORBIDDEN, true));
}

/// A 2026-07-28 client mirrors what each request addresses in `Mcp-Name`,
/// plain or in Base64; the service gets one canonical spelling.
#[tokio::test]
async fn routing_headers_that_agree_with_the_body_go_on_canonical() {
    let with = |method: &'static str, name: &'static str, body: &'static [u8]| {
        Request::post("/mcp")
            .header(header::AUTHORIZATION, "Bearer good")
            .header(header::CONTENT_TYPE, "application/json")
            .header("mcp-method", method)
            .header("mcp-name", name)
            .body(Full::new(Bytes::from_static(body)))
            .expect("request")
    };
    const PROMPT: &[u8] =
        br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"Hello"}}"#;
    const READ: &[u8] =
        br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"test://static-text"}}"#;
    for (request, forwarded) in [
        (with("prompts/get", "Hello", PROMPT), "Hello"),
        (with("prompts/get", "=?base64?SGVsbG8=?=", PROMPT), "Hello"),
        (
            with("resources/read", "test://static-text", READ),
            "test://static-text",
        ),
        (with("tools/call", "echo", ECHO), "echo"),
    ] {
        let (status, received) = send(TenantScope::only("acme"), request).await;
        assert_eq!(status, StatusCode::OK, "{forwarded}");
        let (headers, _) = received.expect("forwarded");
        assert_eq!(headers["mcp-name"], forwarded);
    }
    for request in [
        with("prompts/get", "Goodbye", PROMPT),
        with("resources/read", "test://static-text", PROMPT),
        with("prompts/get", "=?base64?SGVsbG8?=", PROMPT),
        with("tools/call", "echo", READ),
    ] {
        let (status, received) = send(TenantScope::only("acme"), request).await;
        assert_eq!(
            (status, received.is_none()),
            (StatusCode::BAD_REQUEST, true)
        );
    }
}

#[tokio::test]
async fn another_tenants_layer_refuses_the_key() {
    let (status, received) =
        send(TenantScope::only("globex"), post("application/json", ECHO)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(received.is_none());
    let (status, _) = send(TenantScope::Any, post("application/json", ECHO)).await;
    assert_eq!(status, StatusCode::OK);
}

type SeenKeys = Arc<Mutex<Vec<(http::HeaderMap, Arc<VerifiedKey>)>>>;

/// The identity the inner service gets: the headers, and the key itself in
/// the extensions, the same shared value on every request answered from the
/// cache (a reference count, not a copy per request).
#[tokio::test]
async fn a_cached_key_is_shared_with_every_request() {
    let seen: SeenKeys = Arc::default();
    let record = seen.clone();
    let inner = service_fn(move |request: Request<Full<Bytes>>| {
        let record = record.clone();
        async move {
            let key = request
                .extensions()
                .get::<Arc<VerifiedKey>>()
                .cloned()
                .expect("the verified key is in the extensions");
            record
                .lock()
                .expect("lock")
                .push((request.headers().clone(), key));
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        }
    });
    let service = VerifyLayer::builder(OneKey, TenantScope::only("acme"))
        .build()
        .layer(inner);
    for request in [
        // No body at all, and a declared empty one: nothing to judge.
        Request::get("/mcp")
            .header(header::AUTHORIZATION, "Bearer good")
            .header("x-keysmith-tenant", "forged")
            .body(Full::new(Bytes::new()))
            .expect("request"),
        Request::post("/mcp")
            .header(header::AUTHORIZATION, "Bearer good")
            .header(header::CONTENT_LENGTH, "0")
            .body(Full::new(Bytes::new()))
            .expect("request"),
    ] {
        let response = service.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    for (headers, key) in seen.iter() {
        assert_eq!(key.key_id, "k1");
        assert_eq!(headers["x-keysmith-service-user"], "bot");
        assert_eq!(headers["x-keysmith-service-user-id"], "s1");
        assert_eq!(headers["x-keysmith-key-id"], "k1");
        assert_eq!(headers.get_all("x-keysmith-tenant").iter().count(), 1);
        assert_eq!(headers["x-keysmith-tenant"], "acme");
        assert!(!headers.contains_key(header::AUTHORIZATION));
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
    }
    assert!(
        Arc::ptr_eq(&seen[0].1, &seen[1].1),
        "the second request was answered from the cache with the same key"
    );
}
