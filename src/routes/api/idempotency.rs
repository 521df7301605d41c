//! The `Idempotency-Key` header on the tenant API's POSTs (creates,
//! rotations, revocations): the first answer is kept a day and replayed to a
//! retry with the same credential, key and request, so a client that lost an
//! answer does not mint a second key. The rules are in
//! [`crate::domain::keys::idempotency`]; this is the HTTP around them.

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{NO_STORE, extract::BODY_LIMIT};
use crate::{
    domain::keys::idempotency::{self, Attempt, Claim},
    error::{AppError, AppResult},
    state::AppState,
};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// On a replayed answer, so a client can tell (as Stripe's `Idempotent-Replayed`).
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The largest answer kept for replay; the API's answers are a few KiB.
const MAX_KEPT_ANSWER: usize = 256 * 1024;

pub async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(client_key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    // Only POST mints or changes state in a way a retry could repeat.
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    run_once(&state, &client_key, request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run_once(
    state: &AppState,
    client_key: &HeaderValue,
    request: Request,
    next: Next,
) -> AppResult<Response> {
    // Without a credential the handler answers 401; nothing to remember.
    let Some(credential) = request.headers().get(header::AUTHORIZATION).cloned() else {
        return Ok(next.run(request).await);
    };
    // A value that is not visible ASCII fails the check in `Attempt::new`.
    let client_key = client_key.to_str().unwrap_or("\u{0}");
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge(BODY_LIMIT))?;
    let attempt = Attempt::new(
        &state.peppers,
        credential.as_bytes(),
        client_key,
        &[
            parts.method.as_str().as_bytes(),
            parts.uri.path().as_bytes(),
            &body,
        ],
    )?;
    match idempotency::claim(state.pool(), &state.peppers, &attempt, state.now()).await? {
        Claim::Replay { status, body } => Ok(replay(status, body)),
        Claim::InFlight => Err(AppError::Conflict(
            "a request with this Idempotency-Key is still being answered; retry in a moment".into(),
        )),
        Claim::Mismatch => Err(AppError::validation(
            "this Idempotency-Key was already used with a different request (method, path or body); use a new key for a new request",
        )),
        Claim::New => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            keep(state, &attempt, response).await
        }
    }
}

/// Keeps the answer for replay, unless a retry should run again: a server
/// error, or a credential refused or throttled (those say nothing about the
/// request, and must not be pinned for a day).
async fn keep(state: &AppState, attempt: &Attempt, response: Response) -> AppResult<Response> {
    let status = response.status();
    let worth_repeating = !status.is_server_error()
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        );
    if !worth_repeating {
        idempotency::release(state.pool(), attempt).await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, MAX_KEPT_ANSWER).await else {
        idempotency::release(state.pool(), attempt).await?;
        return Err(anyhow::anyhow!("an answer too large to keep for Idempotency-Key").into());
    };
    // The request has run (a key may exist now): its answer goes back even
    // if it cannot be kept; a retry then waits out the abandoned-request delay.
    if let Err(err) = idempotency::complete(
        state.pool(),
        &state.peppers,
        attempt,
        status.as_u16(),
        &body,
    )
    .await
    {
        tracing::error!(error = %err, "an idempotent answer was not kept");
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        NO_STORE,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                IDEMPOTENT_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            ),
        ],
        body,
    )
        .into_response()
}
