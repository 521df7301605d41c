//! The session stage end to end: which `Mcp-Session-Id` headers reach the
//! service (a layer with the default, in-memory bindings).

use http::{HeaderValue, StatusCode};

use super::{ECHO, post, send};
use crate::layer::{MCP_SESSION_ID, TenantScope};

#[tokio::test]
async fn a_session_never_issued_or_named_twice_never_reaches_the_service() {
    let mut made_up = post("application/json", ECHO);
    made_up
        .headers_mut()
        .insert(MCP_SESSION_ID, HeaderValue::from_static("made-up"));
    let (status, received) = send(TenantScope::only("acme"), made_up).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(received.is_none());

    let mut twice = post("application/json", ECHO);
    for id in ["a", "b"] {
        twice
            .headers_mut()
            .append(MCP_SESSION_ID, HeaderValue::from_static(id));
    }
    let (status, received) = send(TenantScope::only("acme"), twice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(received.is_none());
}

#[tokio::test]
async fn a_lookalike_session_header_is_not_forwarded() {
    let mut request = post("application/json", ECHO);
    request
        .headers_mut()
        .insert("mcp_session_id", HeaderValue::from_static("someone-elses"));
    let (status, received) = send(TenantScope::only("acme"), request).await;
    assert_eq!(status, StatusCode::OK);
    let (headers, _) = received.expect("forwarded");
    assert!(!headers.contains_key("mcp_session_id"), "{headers:?}");
}

#[tokio::test]
async fn a_session_named_in_the_url_never_reaches_the_service() {
    // The HTTP+SSE transport's POST: its session was issued in an event
    // stream, where the layer could not bind it to a key.
    for uri in ["/messages?sessionId=abc", "/messages/?x=1&session_id=abc"] {
        let mut request = post("application/json", ECHO);
        *request.uri_mut() = uri.parse().expect("uri");
        let (status, received) = send(TenantScope::only("acme"), request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(received.is_none(), "{uri}");
    }
}
