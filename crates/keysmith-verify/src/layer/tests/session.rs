//! The session stage end to end: which `Mcp-Session-Id` headers reach the
//! service (a layer with the default, in-memory bindings).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

use super::{ECHO, post, send};
use crate::{
    allowlist::Capabilities,
    backend::{BackendError, VerdictFuture, Verifier},
    layer::{MCP_SESSION_ID, TenantScope, VerifyLayer},
    outcome::VerifiedKey,
    session::{Binding, SessionHash, SessionOwner, SessionStore, StoreFuture},
    timestamp,
};

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

/// Keys "k1" and "k2" of tenant acme, each allowed every tool.
#[derive(Debug)]
struct TwoKeys;

impl Verifier for TwoKeys {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        let verdict = VerifiedKey {
            key_id: presented.to_owned(),
            tenant_id: "t1".into(),
            tenant_slug: "acme".into(),
            service_user_id: format!("su-{presented}"),
            service_user_name: presented.to_owned(),
            valid_until: timestamp::from_unix(4_000_000_000),
            scopes: vec![],
            allowed: Capabilities::everything(),
            limits: Default::default(),
            token: None,
        };
        Box::pin(async move { Ok(Ok(verdict)) })
    }
}

#[tokio::test]
async fn an_upstream_handing_one_keys_session_to_another_is_withheld() {
    // An upstream that issues the same session id to everyone.
    let service = VerifyLayer::builder(TwoKeys, TenantScope::only("acme"))
        .build()
        .layer(service_fn(|_: Request<Full<Bytes>>| async {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            response
                .headers_mut()
                .insert(MCP_SESSION_ID, HeaderValue::from_static("fixed"));
            Ok::<_, Infallible>(response)
        }));
    let send = |key: &'static str, session: Option<&'static str>| {
        let mut request = post("application/json", ECHO);
        let headers = request.headers_mut();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).expect("value"),
        );
        if let Some(session) = session {
            headers.insert(MCP_SESSION_ID, HeaderValue::from_static(session));
        }
        service.clone().oneshot(request)
    };
    let status = |r: Result<Response<_>, Infallible>| r.expect("infallible").status();
    assert_eq!(
        status(send("k1", None).await),
        StatusCode::OK,
        "issued to k1"
    );
    assert_eq!(status(send("k1", Some("fixed")).await), StatusCode::OK);
    assert_eq!(
        status(send("k2", None).await),
        StatusCode::BAD_GATEWAY,
        "k1's session is not handed to k2"
    );
    assert_eq!(
        status(send("k2", Some("fixed")).await),
        StatusCode::NOT_FOUND
    );
}

/// A store that cannot be reached.
#[derive(Debug)]
struct Down;

impl SessionStore for Down {
    fn bind<'a>(
        &'a self,
        _: SessionHash,
        _: &'a SessionOwner,
        _: i64,
        _: i64,
    ) -> StoreFuture<'a, Option<Binding>> {
        Box::pin(async { Err(BackendError::Remote("down".into())) })
    }

    fn find(&self, _: SessionHash, _: i64) -> StoreFuture<'_, Option<Binding>> {
        Box::pin(async { Err(BackendError::Remote("down".into())) })
    }

    fn touch(&self, _: SessionHash, _: i64) -> StoreFuture<'_, ()> {
        Box::pin(async { Err(BackendError::Remote("down".into())) })
    }

    fn end(&self, _: SessionHash) -> StoreFuture<'_, ()> {
        Box::pin(async { Err(BackendError::Remote("down".into())) })
    }
}

#[tokio::test]
async fn bindings_that_cannot_be_read_or_written_fail_closed() {
    let reached = Arc::new(AtomicUsize::new(0));
    let count = reached.clone();
    let service = VerifyLayer::builder(TwoKeys, TenantScope::only("acme"))
        .sessions(Down)
        .build()
        .layer(service_fn(move |_: Request<Full<Bytes>>| {
            count.fetch_add(1, Ordering::SeqCst);
            async {
                let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                response
                    .headers_mut()
                    .insert(MCP_SESSION_ID, HeaderValue::from_static("issued"));
                Ok::<_, Infallible>(response)
            }
        }));
    let request = |session: Option<&'static str>| {
        let mut request = post("application/json", ECHO);
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k1"));
        if let Some(session) = session {
            request
                .headers_mut()
                .insert(MCP_SESSION_ID, HeaderValue::from_static(session));
        }
        request
    };
    let named = service.clone().oneshot(request(Some("issued"))).await;
    assert_eq!(
        named.expect("infallible").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "not let through unchecked"
    );
    let issued = service
        .clone()
        .oneshot(request(None))
        .await
        .expect("infallible");
    assert_eq!(
        issued.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "an unbound session is withheld"
    );
    assert!(!issued.headers().contains_key(MCP_SESSION_ID));
}
