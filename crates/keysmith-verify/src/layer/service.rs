//! `VerifyService`: the per-request work.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use serde_json::json;
use tower::Service;

use super::{
    body::{BoxError, LayerBody},
    capabilities,
    future::ResponseFuture,
    guard, headers,
    layer::{Shared, TenantScope},
    limited::{Counted, limited},
    listings, request_body, session, step_up,
};
use crate::{
    audit::AuditRecord,
    identity::{AuditIds, Identity},
    outcome::{VerifiedKey, VerifyCode},
    telemetry,
};

/// The client's request id, kept in the audit line.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id kept in the audit log.
const MAX_REQUEST_ID_LEN: usize = 128;

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
    type Future = ResponseFuture<LayerBody<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone may not be ready; the instance poll_ready was called on is.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        ResponseFuture::new(async move {
            let started = Instant::now();
            let (mut parts, body) = request.into_parts();
            // Judged on the head before the key; the key is looked at only
            // to file the refusal under it (see `guard`).
            let guarded = guard::refusal(&shared, &parts);
            let identity = match authenticate(&shared, &shared.tenant, &parts).await {
                Ok(identity) => identity,
                Err(unverified) => {
                    let response =
                        refuse_unverified(&shared, parts, body, unverified, guarded, started);
                    return Ok(response.await);
                }
            };
            let (key, ids) = (&identity.key, &identity.audit);
            if let Some(refused) = guarded {
                let subject = refused_subject(&shared, &mut parts, body).await;
                return Ok(refuse(&shared, &parts, ids, |_| subject, refused, started).await);
            }
            let (body, message) = if shared.mcp {
                match request_body::read(&mut parts, body, shared.body_limit).await {
                    Ok(read) => read,
                    Err(refused) => {
                        // Nothing was read: the audit names `METHOD /path`.
                        let refused = refused.into_refused();
                        return Ok(
                            refuse(&shared, &parts, ids, method_and_path, refused, started).await,
                        );
                    }
                }
            } else {
                (body, None)
            };
            // What the audit line names the call (built only when there is an audit).
            let subject = |parts: &Parts| {
                message
                    .as_ref()
                    .map_or_else(|| method_and_path(parts), |m| m.subject().to_owned())
            };
            let admitted = match session::admit(&shared, &mut parts, &identity).await {
                Ok(admitted) => admitted,
                Err(refused) => {
                    return Ok(refuse(&shared, &parts, ids, subject, refused, started).await);
                }
            };
            if let Some(refused) = capabilities::refusal(key, message.as_ref()) {
                let refused = step_up::challenge(&shared, key, message.as_ref(), refused);
                return Ok(refuse(&shared, &parts, ids, subject, refused, started).await);
            }
            // Only requests allowed so far count against the key's limits.
            if !key.limits.is_unlimited()
                && let Some(counted) = Counted::of(shared.mcp, message.as_ref())
            {
                let verdict = shared
                    .limiter
                    .check(key, counted.tool(), shared.clock.now())
                    .await;
                if let Some(refused) = limited(verdict, &counted) {
                    return Ok(refuse(&shared, &parts, ids, subject, refused, started).await);
                }
            }
            shared.metrics.valid();
            // Written when the answer's headers are back, or by the guard if
            // the client goes away first: every verified call has its line.
            let pending = PendingAudit {
                shared: shared.clone(),
                line: audit_line(&shared, &parts, &identity.audit, subject, VerifyCode::Valid),
                started,
            };
            // Every answer is read for listings when the key names an
            // allowlist: by what it carries, not what was asked.
            let listing_filter = listings::filter_for(shared.mcp, key, message.as_ref());
            if listing_filter.is_some() {
                // An answer the filter could not read would be refused whole.
                parts.headers.remove(header::ACCEPT_ENCODING);
            }
            headers::scrub(&mut parts.headers);
            headers::inject(&mut parts.headers, &identity.headers);
            parts.extensions.insert(key.clone());
            let outcome = inner.call(Request::from_parts(parts, body)).await;
            let response = match outcome {
                Ok(response) => response,
                // No answer: the guard writes the line without a status.
                Err(err) => {
                    drop(pending);
                    return Err(err);
                }
            };
            let response = match session::settle(&shared, &admitted, &identity, response).await {
                Ok(response) => response,
                Err(refusal) => {
                    pending.finish(Some(refusal.status())).await;
                    return Ok(refusal);
                }
            };
            pending.finish(Some(response.status())).await;
            Ok(match listing_filter {
                None => response.map(|body| LayerBody::Inner { body }),
                Some(filter) => filter.apply(response),
            })
        })
    }
}

/// A request the layer answers itself, and why: the audit reason and the
/// metric's outcome.
pub(super) type Refused<B> = (Response<LayerBody<B>>, VerifyCode);

/// Refuses a verified key's request: counted by its code, and one audit line
/// with it, so every attempt a genuine key makes is in its trail.
pub(super) async fn refuse<B>(
    shared: &Shared,
    parts: &Parts,
    ids: &AuditIds,
    subject: impl FnOnce(&Parts) -> String,
    (response, code): Refused<B>,
    started: Instant,
) -> Response<LayerBody<B>> {
    telemetry::request(code.as_str());
    let line = audit_line(shared, parts, ids, subject, code);
    record(shared, line, Some(response.status()), started).await;
    response
}

/// Why a request has no usable key: the answer, the metric's outcome, and
/// the key to audit the refusal against when it is genuine and of this
/// service's tenant.
pub(super) struct Unverified<B> {
    pub(super) response: Response<LayerBody<B>>,
    pub(super) outcome: &'static str,
    pub(super) known: Option<(Box<VerifiedKey>, VerifyCode)>,
}

/// The metric's outcome for a genuine key of a tenant the layer does not serve.
pub(super) const OTHER_TENANT: &str = "other_tenant";

impl<B> Unverified<B> {
    fn unknown(response: Response<LayerBody<B>>, outcome: &'static str) -> Self {
        Self {
            response,
            outcome,
            known: None,
        }
    }
}

/// Verifies the bearer key for a service of `tenant`: the identity, or why
/// the request has none.
pub(super) async fn authenticate<B>(
    shared: &Shared,
    tenant: &TenantScope,
    parts: &Parts,
) -> Result<Arc<Identity>, Unverified<B>> {
    let Some(presented) = headers::bearer(&parts.headers) else {
        let response = unauthorized(shared, "missing bearer key", false);
        return Err(Unverified::unknown(response, "missing_key"));
    };
    let asked = Instant::now();
    let verdict = shared.verifier.identify(presented).await;
    shared.metrics.verify_time(asked.elapsed());
    match verdict {
        Ok(Ok(identity)) if !tenant.admits(&identity.key.tenant_slug) => {
            tracing::info!("key of another tenant refused");
            let response = unauthorized(shared, VerifyCode::NotFound.as_str(), true);
            Err(Unverified::unknown(response, OTHER_TENANT))
        }
        Ok(Ok(identity)) if !for_this_resource(shared, &identity.key) => {
            // Bound to another audience (RFC 8707): as if unknown here.
            tracing::info!("access token for another resource refused");
            let response = unauthorized(shared, "token for another resource", true);
            Err(Unverified::unknown(response, "other_resource"))
        }
        Ok(Ok(identity)) => Ok(identity),
        Ok(Err(refusal)) => {
            tracing::info!(
                code = refusal.code.as_str(),
                key_id = refusal.key_id.as_deref(),
                "key refused"
            );
            let known = refusal.known.filter(|k| tenant.admits(&k.tenant_slug));
            // Another tenant's key is refused as if it did not exist.
            let code = if known.is_some() {
                refusal.code
            } else {
                VerifyCode::NotFound
            };
            Err(Unverified {
                response: unauthorized(shared, code.as_str(), true),
                outcome: code.as_str(),
                known: known.map(|k| (k, refusal.code)),
            })
        }
        Err(err) => {
            // Fail closed: no verdict, no pass.
            tracing::error!(error = %err, "key verification backend unavailable");
            let response = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"code": "unavailable", "message": "key verification is unavailable"}}),
            );
            Err(Unverified::unknown(response, "unavailable"))
        }
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
    unverified: Unverified<B>,
    guarded: Option<Refused<B>>,
    started: Instant,
) -> Response<LayerBody<B>>
where
    ReqBody: Body<Data = Bytes> + From<Bytes>,
    ReqBody::Error: Into<BoxError>,
{
    let (response, outcome) = match guarded {
        Some((response, code)) => (response, code.as_str()),
        None => (unverified.response, unverified.outcome),
    };
    telemetry::request(outcome);
    if let Some((known, code)) = unverified.known {
        let subject = refused_subject(shared, &mut parts, body).await;
        let line = audit_line(shared, &parts, &AuditIds::of(&known), |_| subject, code);
        record(shared, line, Some(response.status()), started).await;
    }
    response
}

/// What a refused request would have done, for its audit line.
async fn refused_subject<B>(shared: &Shared, parts: &mut Parts, body: B) -> String
where
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<BoxError>,
{
    if shared.mcp
        && let Ok((_, Some(message))) = request_body::read(parts, body, shared.body_limit).await
    {
        return message.subject().to_owned();
    }
    method_and_path(parts)
}

/// `METHOD /path`, what the audit names a request without a message.
fn method_and_path(parts: &Parts) -> String {
    let (method, path) = (parts.method.as_str(), parts.uri.path());
    // Built by hand: `format!` costs several times as much, on every request.
    let mut subject = String::with_capacity(method.len() + 1 + path.len());
    subject.push_str(method);
    subject.push(' ');
    subject.push_str(path);
    subject
}

/// The audit line of a request, before its outcome is known (`None`
/// without an audit sink).
pub(super) fn audit_line(
    shared: &Shared,
    parts: &Parts,
    ids: &AuditIds,
    subject: impl FnOnce(&Parts) -> String,
    code: VerifyCode,
) -> Option<AuditRecord> {
    shared.audit.as_ref()?;
    Some(AuditRecord {
        tenant_id: ids.tenant_id.clone(),
        key_id: ids.key_id.clone(),
        service_user_id: ids.service_user_id.clone(),
        tool: subject(parts),
        allowed: code == VerifyCode::Valid,
        reason: code.as_str(),
        request_id: parts
            .headers
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|id| truncate(id, MAX_REQUEST_ID_LEN).to_owned()),
        at: shared.clock.now(),
        status: None,
        duration_us: None,
    })
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Queues `line` with its outcome (waiting for room: backpressure, no loss).
pub(super) async fn record(
    shared: &Shared,
    line: Option<AuditRecord>,
    status: Option<StatusCode>,
    started: Instant,
) {
    let (Some(sink), Some(mut line)) = (&shared.audit, line) else {
        return;
    };
    line.status = status.map(|s| s.as_u16());
    line.duration_us = Some(elapsed_us(started));
    sink.record(line).await;
}

/// The audit line of a call on its way to the inner service.
struct PendingAudit {
    shared: Arc<Shared>,
    line: Option<AuditRecord>,
    started: Instant,
}

impl PendingAudit {
    async fn finish(mut self, status: Option<StatusCode>) {
        let line = self.line.take();
        record(&self.shared, line, status, self.started).await;
    }
}

impl Drop for PendingAudit {
    /// The request was dropped before its answer (the client went away): the
    /// call still ran, so its line is written, without a status.
    fn drop(&mut self) {
        if let (Some(sink), Some(mut line)) = (&self.shared.audit, self.line.take()) {
            line.duration_us = Some(elapsed_us(self.started));
            sink.record_detached(line);
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn json_response<B>(
    status: StatusCode,
    body: serde_json::Value,
) -> Response<LayerBody<B>> {
    let mut response = Response::new(LayerBody::own(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Whether a verified credential may be used here: a key always, an
/// access token only at the resource it is bound to (stored canonical).
fn for_this_resource(shared: &Shared, key: &VerifiedKey) -> bool {
    key.token.as_ref().is_none_or(|token| {
        shared
            .resource
            .as_ref()
            .is_some_and(|resource| resource.resource() == token.resource)
    })
}

/// `401` with the challenge: the protected resource's metadata and scopes
/// when the layer is one (`invalid_token` when a credential was presented).
pub(super) fn unauthorized<B>(
    shared: &Shared,
    code: &str,
    presented: bool,
) -> Response<LayerBody<B>> {
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"code": "unauthorized", "message": format!("a valid API key is required ({code})")}}),
    );
    let challenge = match (&shared.resource, &shared.resource_metadata) {
        (Some(resource), _) => resource.challenge(presented),
        (None, Some(url)) => format!("Bearer resource_metadata=\"{url}\""),
        (None, None) => "Bearer".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
