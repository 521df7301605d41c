//! `VerifyService`: the per-request pipeline. Each stage is a function of
//! its own file; `judge` runs those before the inner service in order and
//! answers a refusal, the [`ResponseFuture`] calls the inner service and
//! finishes its answer:
//!
//! authenticate → read and judge the message → session → authorize →
//! limit → forward (`upstream.rs`) → audit and filter the answer
//! (`answer.rs`).

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{Request, Response, request::Parts};
use http_body::Body;
use tower::Service;

use super::{
    answer::Forwarded,
    audit_line::{self, PendingAudit, Subject},
    authenticate::{Unverified, authenticate},
    body::{BoxError, LayerBody},
    capabilities,
    future::ResponseFuture,
    guard,
    jsonrpc::Message,
    limited::limit,
    listings,
    refused::Refused,
    request_body, session,
    shared::Shared,
    stage::{Admitting, Authenticating, JudgingBody, Limiting},
    upstream,
};
use crate::{
    identity::{AuditIds, Identity},
    outcome::VerifyCode,
    telemetry,
};

#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> VerifyService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<LayerBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone may not be ready; the instance poll_ready was called on is.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(Box::pin(judge(self.shared.clone(), request)), inner)
    }
}

/// The stages before the inner service, in order: the request to forward
/// (with what its answer goes through), or the first refusal. The inner
/// service is called, and its answer finished (`answer.rs`), by the
/// [`ResponseFuture`].
async fn judge<ReqBody, ResBody>(
    shared: Arc<Shared>,
    request: Request<ReqBody>,
) -> Result<(Request<ReqBody>, Forwarded), Response<LayerBody<ResBody>>>
where
    ReqBody: Body<Data = Bytes> + From<Bytes>,
    ReqBody::Error: Into<BoxError>,
{
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    // Judged on the head before the key; the key is looked at only to file
    // the refusal under it (see `guard`).
    let guarded = guard::refusal(&shared, &parts);
    let identity = match Authenticating::new(authenticate(&shared, &shared.tenant, &parts)).await {
        Ok(identity) => identity,
        Err(unverified) => {
            return Err(
                refuse_unverified(&shared, parts, body, unverified, guarded, started).await,
            );
        }
    };
    let (key, ids) = (&identity.key, &identity.audit);
    let refuse = Refusing {
        shared: &shared,
        ids,
        started,
    };
    if let Some(refused) = guarded {
        let message = request_body::refused_message(&shared, &mut parts, body).await;
        return Err(refuse
            .answer(&parts, Subject::of(message.as_ref()), refused)
            .await);
    }
    let (body, message) =
        match JudgingBody::new(request_body::judge(&shared, &mut parts, body)).await {
            Ok(read) => read,
            // Nothing was read: the audit names `METHOD /path`.
            Err(refused) => return Err(refuse.answer(&parts, Subject::Head, refused).await),
        };
    let subject = Subject::of(message.as_ref());
    let admitted = match Admitting::new(session::admit(&shared, &mut parts, &identity)).await {
        Ok(admitted) => admitted,
        Err(refused) => return Err(refuse.answer(&parts, subject, refused).await),
    };
    if let Err(refused) = capabilities::authorize(&shared, key, message.as_ref()) {
        return Err(refuse.answer(&parts, subject, refused).await);
    }
    if let Err(refused) = Limiting::new(limit(&shared, shared.mcp, key, message.as_ref())).await {
        return Err(refuse.answer(&parts, subject, refused).await);
    }
    Ok(forward(
        &shared,
        (parts, body),
        &identity,
        message,
        admitted,
        started,
    ))
}

/// A request every stage let through: counted valid, its audit line begun,
/// and sent on with what its answer goes through.
fn forward<ReqBody>(
    shared: &Arc<Shared>,
    (parts, body): (Parts, ReqBody),
    identity: &Arc<Identity>,
    message: Option<Message>,
    admitted: session::Admitted,
    started: Instant,
) -> (Request<ReqBody>, Forwarded) {
    shared.metrics.valid();
    // Every answer is read for listings when the key names an allowlist:
    // by what it carries, not what was asked.
    let filter = listings::filter_for(shared.mcp, &identity.key, message.as_ref());
    // The message's last use: its tool name moves into the line.
    let line = audit_line::line_taking(shared, &parts, &identity.audit, message, VerifyCode::Valid);
    let pending = PendingAudit::new(shared.clone(), line, started);
    let request = upstream::request(parts, body, identity, filter.is_some());
    let forwarded = Forwarded {
        shared: shared.clone(),
        identity: identity.clone(),
        admitted,
        pending,
        filter,
    };
    (request, forwarded)
}

/// How the pipeline refuses a verified key's request: audited, counted,
/// answered.
struct Refusing<'a> {
    shared: &'a Shared,
    ids: &'a AuditIds,
    started: Instant,
}

impl Refusing<'_> {
    async fn answer<B>(
        &self,
        parts: &Parts,
        subject: Subject<'_>,
        refused: Refused,
    ) -> Response<LayerBody<B>> {
        let (shared, ids, started) = (self.shared, self.ids, self.started);
        let refused = audit_line::refuse(shared, parts, ids, subject, refused, started).await;
        refused.into_response()
    }
}

/// Answers a request without a usable key: with the guard's refusal if it
/// has one (whatever the key, so the answer says nothing about it), else
/// the key's. Counted by what is answered; audited only against a genuine
/// key of this tenant that may no longer be used.
async fn refuse_unverified<B, ReqBody>(
    shared: &Shared,
    mut parts: Parts,
    body: ReqBody,
    unverified: Unverified,
    guarded: Option<Refused>,
    started: Instant,
) -> Response<LayerBody<B>>
where
    ReqBody: Body<Data = Bytes> + From<Bytes>,
    ReqBody::Error: Into<BoxError>,
{
    let (refused, outcome) = match guarded {
        Some(refused) => {
            let outcome = refused.reason().as_str();
            (refused, outcome)
        }
        None => (unverified.refused, unverified.outcome),
    };
    telemetry::request(outcome);
    if let Some((known, code)) = unverified.known {
        let message = request_body::refused_message(shared, &mut parts, body).await;
        let line = audit_line::line(
            shared,
            &parts,
            &AuditIds::of(&known),
            Subject::of(message.as_ref()),
            code,
        );
        audit_line::record(shared, line, Some(refused.status()), started).await;
    }
    refused.into_response()
}
