//! A guard's refusal (the gateway's `Origin` check) is the answer whatever
//! the key, and is audited once against a genuine key only.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body_util::Full;
use serde_json::json;
use tokio::sync::mpsc;
use tower::{Layer, ServiceExt, service_fn};

use super::{ECHO, OneKey};
use crate::{
    audit::AuditSink,
    layer::{GuardRefusal, RequestGuard, TenantScope, VerifyLayer},
    outcome::VerifyCode,
};

/// Refuses every request that has an `Origin`.
#[derive(Debug)]
struct NoOrigin;

impl RequestGuard for NoOrigin {
    fn check(&self, head: &Parts) -> Result<(), GuardRefusal> {
        if head.headers.contains_key(header::ORIGIN) {
            return Err(GuardRefusal {
                status: StatusCode::FORBIDDEN,
                body: json!({"error": "origin"}),
                code: VerifyCode::OriginNotAllowed,
            });
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_guard_refusal_is_answered_whatever_the_key_and_audited_for_a_genuine_one() {
    let (tx, mut audited) = mpsc::channel(16);
    let layer = VerifyLayer::builder(OneKey, TenantScope::only("acme"))
        .guard(NoOrigin)
        .audit(AuditSink::new(tx))
        .build();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let service = layer.layer(service_fn(move |_: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
    }));
    for key in [Some("good"), Some("unknown"), None] {
        let mut request = Request::post("/mcp")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ORIGIN, "https://evil.example.com");
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = request
            .body(Full::new(Bytes::from_static(ECHO)))
            .expect("request");
        let response = service.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{key:?}");
    }
    assert_eq!(reached.load(Ordering::SeqCst), 0, "never forwarded");
    let line = audited.try_recv().expect("the genuine key's line");
    assert_eq!((line.reason, line.allowed), ("origin_not_allowed", false));
    assert_eq!((&*line.key_id, line.tool.as_str()), ("k1", "echo"));
    assert_eq!(line.status, Some(403));
    assert!(audited.try_recv().is_err(), "one line, none without a key");
}
