//! Liveness, readiness and metrics: outside key authentication. `/metrics`
//! beside the API is served only to clients on this host unless it requires
//! a token (`KEYSMITH_METRICS_TOKEN`); or it moves to its own address
//! (`KEYSMITH_METRICS_BIND`).

use std::net::SocketAddr;

use crate::{
    config::Config,
    metrics::access::{metrics_allowed, token_allows},
    state::AppState,
};
use axum::{
    Extension, Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

pub fn router(config: &Config) -> Router<AppState> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if config.metrics_bind.is_some() {
        router
    } else {
        router.route("/metrics", get(metrics_beside_the_api))
    }
}

/// `/metrics` on its own address (`KEYSMITH_METRICS_BIND`): the operator
/// chose who reaches that address; a token, if set, is still required.
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
    if !token_allows(&state.config, &headers) {
        return refused();
    }
    render(&state)
}

async fn metrics_beside_the_api(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer.ip());
    if !metrics_allowed(&state.config, &headers, peer) {
        return refused();
    }
    render(&state)
}

fn render(state: &AppState) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "metrics need the token of KEYSMITH_METRICS_TOKEN (without one they are \
         served only to clients on this host, or on KEYSMITH_METRICS_BIND)",
    )
        .into_response()
}
