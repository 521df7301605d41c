//! `VerifyService`: the per-request work.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use serde_json::json;
use tower::Service;

use super::{
    future::ResponseFuture,
    headers,
    layer::Shared,
    mcp::{self, ToolCall},
};
use crate::{
    audit::AuditRecord,
    backend::Verifier,
    outcome::{VerifiedKey, VerifyCode},
};

const MCP_NAME: &str = "mcp-name";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    ReqBody: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    /// The inner service's body, or the layer's own refusal: an enum, not a box.
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<Either<ResBody, Full<Bytes>>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone may not be ready; the instance poll_ready was called on is.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let key = match authenticate(&shared, &parts).await {
                Ok(key) => key,
                Err(response) => return Ok(response.map(Either::Right)),
            };
            let (body, call) = match inspect_body(&shared, &parts, body).await {
                Ok(found) => found,
                Err(response) => return Ok(response.map(Either::Right)),
            };
            let subject = call.as_ref().map_or_else(
                || format!("{} {}", parts.method, parts.uri.path()),
                |c| c.name.clone(),
            );
            if let Some(call) = &call
                && !key.allowed_tools.allows(&call.name)
            {
                audit(&shared, &parts, &key, subject, VerifyCode::ToolNotAllowed).await;
                return Ok(tool_refused(call).map(Either::Right));
            }
            audit(&shared, &parts, &key, subject, VerifyCode::Valid).await;
            headers::scrub(&mut parts.headers);
            headers::inject(&mut parts.headers, &key);
            parts.extensions.insert(key);
            let response = inner.call(Request::from_parts(parts, body)).await?;
            Ok(response.map(Either::Left))
        })
    }
}

/// Verifies the bearer key: the identity, or the response that refuses it.
async fn authenticate(
    shared: &Shared,
    parts: &Parts,
) -> Result<VerifiedKey, Response<Full<Bytes>>> {
    let Some(presented) = headers::bearer(&parts.headers) else {
        return Err(unauthorized(shared, "missing bearer key"));
    };
    match shared.verifier.verify(presented).await {
        Ok(Ok(key)) => Ok(key),
        Ok(Err(refusal)) => {
            if let Some(known) = &refusal.known {
                let subject = format!("{} {}", parts.method, parts.uri.path());
                audit(shared, parts, known, subject, refusal.code).await;
            }
            tracing::info!(
                code = refusal.code.as_str(),
                key_id = refusal.key_id.as_deref(),
                "key refused"
            );
            Err(unauthorized(shared, refusal.code.as_str()))
        }
        Err(err) => {
            // Fail closed: no verdict, no pass.
            tracing::error!(error = %err, "key verification backend unavailable");
            Err(json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"code": "unavailable", "message": "key verification is unavailable"}}),
            ))
        }
    }
}

/// Reads a JSON POST body (under the cap) to find a `tools/call`, and gives
/// back a body carrying the same bytes. Other requests pass untouched.
async fn inspect_body<B>(
    shared: &Shared,
    parts: &Parts,
    body: B,
) -> Result<(B, Option<ToolCall>), Response<Full<Bytes>>>
where
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<BoxError>,
{
    let is_json_post = parts.method == http::Method::POST
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
    if !is_json_post {
        return Ok((body, None));
    }
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": {"code": "payload_too_large", "message": "request body too large"}}),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > shared.body_limit) {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, shared.body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
        }
        Err(err) => {
            tracing::warn!(error = %err, "failed to read the request body");
            return Err(json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "bad_request", "message": "unreadable request body"}}),
            ));
        }
    };
    let call = mcp::tool_call(&bytes).map_err(|mcp::BodyProblem::Unverifiable(why)| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": why}}),
        )
    })?;
    if let (Some(call), Some(header_name)) = (&call, parts.headers.get(MCP_NAME))
        && header_name.as_bytes() != call.name.as_bytes()
    {
        return Err(json_response(
            StatusCode::BAD_REQUEST,
            json!({"jsonrpc": "2.0", "id": call.id, "error": {"code": -32600, "message": "Mcp-Name header does not match params.name"}}),
        ));
    }
    Ok((B::from(bytes), call))
}

async fn audit(
    shared: &Shared,
    parts: &Parts,
    key: &VerifiedKey,
    subject: String,
    code: VerifyCode,
) {
    let Some(sink) = &shared.audit else { return };
    sink.record(AuditRecord {
        tenant_id: key.tenant_id.clone(),
        key_id: key.key_id.clone(),
        service_user_id: key.service_user_id.clone(),
        tool: subject,
        allowed: code == VerifyCode::Valid,
        reason: code.as_str(),
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        at: shared.clock.now(),
    })
    .await;
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn unauthorized(shared: &Shared, code: &str) -> Response<Full<Bytes>> {
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"code": "unauthorized", "message": format!("a valid API key is required ({code})")}}),
    );
    let challenge = match &shared.resource_metadata {
        Some(url) => format!("Bearer resource_metadata=\"{url}\""),
        None => "Bearer".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// 403 with a JSON-RPC error that answers the request's id, so MCP clients
/// show a tool error rather than a transport failure.
fn tool_refused(call: &ToolCall) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::FORBIDDEN,
        json!({"jsonrpc": "2.0", "id": call.id, "error": {"code": -32001, "message": format!("this API key may not call the tool `{}`", call.name)}}),
    )
}
