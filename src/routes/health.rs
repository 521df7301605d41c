//! Liveness, readiness and metrics: outside key authentication. `/metrics`
//! can require a token (`KEYSMITH_METRICS_TOKEN`) or move to its own
//! address (`KEYSMITH_METRICS_BIND`).

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use subtle::ConstantTimeEq;

use crate::{config::Config, state::AppState};

pub fn router(config: &Config) -> Router<AppState> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if config.metrics_bind.is_some() {
        router
    } else {
        router.merge(metrics_router())
    }
}

/// `/metrics` alone: beside the API, or on `KEYSMITH_METRICS_BIND`.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.db.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !metrics_allowed(&state.config, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need the token of KEYSMITH_METRICS_TOKEN",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// No token configured: open. Otherwise `Authorization: Bearer <token>`,
/// compared in constant time.
pub fn metrics_allowed(config: &Config, headers: &HeaderMap) -> bool {
    let Some(token) = &config.metrics_token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, presented)| {
            presented
                .trim()
                .as_bytes()
                .ct_eq(token.expose().as_bytes())
                .into()
        })
}
