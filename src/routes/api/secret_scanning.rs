//! Leak reports: `POST /api/v1/secret-scanning/github` in GitHub's partner
//! format (the signature over the raw body is the only authentication), and
//! GitLab's token revocation API (`GET /v1/revocable_token_types`,
//! `POST /v1/revoke_tokens`, authenticated by a management key of the
//! dedicated scope `keysmith:revoke-leaked`).

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::RevokeCaller;
use crate::{
    domain::keys::leaks::{self, Verdict},
    state::AppState,
};

const KEY_ID: &str = "github-public-key-identifier";
const SIGNATURE: &str = "github-public-key-signature";

/// One reported token, in GitHub's format.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = Report)]
pub struct ReportIn {
    pub token: String,
    #[serde(rename = "type", default)]
    pub token_type: String,
    /// Where the token was found (`location` in GitLab's format).
    #[serde(default, alias = "location")]
    pub url: String,
    #[serde(default)]
    pub source: String,
}

impl From<ReportIn> for leaks::Report {
    fn from(report: ReportIn) -> Self {
        Self {
            token: report.token,
            token_type: report.token_type,
            url: report.url,
            source: report.source,
        }
    }
}

// The API's shape of the domain's `Verdict` (no doc comment: it would
// become the schema's description, and the document keeps none).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Verdict)]
pub struct VerdictOut {
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` (a genuine Keysmith key: revoked now if it still
    /// worked) or `false_positive`.
    pub label: &'static str,
}

impl From<Verdict> for VerdictOut {
    fn from(verdict: Verdict) -> Self {
        Self {
            token_hash: verdict.token_hash,
            token_type: verdict.token_type,
            label: verdict.label,
        }
    }
}

#[utoipa::path(post, operation_id = "secret_scanning_github", path = "/api/v1/secret-scanning/github", tag = "secret scanning",
    request_body(content = Vec<ReportIn>, description = "reported tokens, signed by GitHub (Github-Public-Key-Signature over the raw body)"),
    responses((status = 200, body = Vec<VerdictOut>, description = "one verdict per token, by the token's SHA-256"),
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
    let Ok(reports) = serde_json::from_slice::<Vec<ReportIn>>(&body) else {
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
    judge(&state, "GitHub secret scanning", reports).await
}

/// The token types GitLab may report (its token revocation API).
#[utoipa::path(get, path = "/v1/revocable_token_types", tag = "secret scanning", operation_id = "secret_scanning_gitlab_types",
    responses((status = 200, description = "`{types: [{type, name, description, source, regex}]}`: the key format GitLab looks for", body = Object)))]
pub async fn gitlab_types() -> Json<serde_json::Value> {
    Json(json!({"types": [{
        "type": "keysmith_api_key",
        "name": "Keysmith service API key",
        "description": "A key for machine clients issued by Keysmith: <prefix>_<16-character key id>_<22-character secret><6-character checksum>",
        "source": "keysmith",
        "regex": "\\b([a-z][a-z0-9]{1,15}_[0-9A-Za-z]{16}_[0-9A-Za-z]{28})\\b",
    }]}))
}

/// GitLab's `POST /v1/revoke_tokens`: `[{type, token, location}]`.
#[utoipa::path(post, path = "/v1/revoke_tokens", tag = "secret scanning", operation_id = "secret_scanning_gitlab_revoke",
    request_body(content = Vec<ReportIn>, description = "`[{type, token, location}]`"),
    responses((status = 200, body = Vec<VerdictOut>, description = "one verdict per token, the token answered by its SHA-256"), (status = 422, description = "not a JSON array of reports")),
    security(("management_key" = [])))]
pub async fn gitlab_revoke(
    State(state): State<AppState>,
    _caller: RevokeCaller,
    body: Bytes,
) -> Response {
    let Ok(reports) = serde_json::from_slice::<Vec<ReportIn>>(&body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": {"code": "validation_failed", "message": "expected a JSON array of {type, token, location}"}})),
        )
            .into_response();
    };
    judge(&state, "GitLab token revocation", reports).await
}

/// Judges each reported token: one verdict per token, in order.
async fn judge(state: &AppState, reporter: &str, reports: Vec<ReportIn>) -> Response {
    let reports = reports.into_iter().map(leaks::Report::from).collect();
    match leaks::handle(
        state.pool(),
        &state.verifier,
        reporter,
        reports,
        state.now(),
    )
    .await
    {
        Ok(verdicts) => Json(
            verdicts
                .into_iter()
                .map(VerdictOut::from)
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(err) => crate::error::AppError::from(err).into_response(),
    }
}
