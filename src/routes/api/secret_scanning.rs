//! `POST /api/v1/secret-scanning/github`: GitHub's secret-scanning partner
//! format. The signature over the raw body is the only authentication.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    domain::leaks::{self, Report},
    state::AppState,
};

const KEY_ID: &str = "github-public-key-identifier";
const SIGNATURE: &str = "github-public-key-signature";

#[utoipa::path(post, path = "/api/v1/secret-scanning/github", tag = "secret scanning",
    request_body(content = Vec<Report>, description = "reported tokens, signed by GitHub (Github-Public-Key-Signature over the raw body)"),
    responses((status = 200, body = Vec<leaks::Verdict>, description = "one verdict per token, by the token's SHA-256"),
              (status = 401, description = "missing or bad signature"), (status = 404, description = "not configured")))]
pub async fn github(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let error = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    };
    let Some(keys) = &state.scanner_keys else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "secret scanning reports are not configured",
        );
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = match (header(KEY_ID), header(SIGNATURE)) {
        (Some(id), Some(signature)) => keys.verify(id, signature, &body),
        _ => false,
    };
    if !signed {
        tracing::warn!("secret scanning report with a missing or bad signature refused");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the report's signature does not verify",
        );
    }
    let Ok(reports) = serde_json::from_slice::<Vec<Report>>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "expected a JSON array of {token, type, url, source}",
        );
    };
    if reports.len() > 1000 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "at most 1000 tokens per report",
        );
    }
    match leaks::handle(state.pool(), &state.verifier, reports, state.now()).await {
        Ok(verdicts) => Json(verdicts).into_response(),
        Err(err) => err.into_response(),
    }
}
