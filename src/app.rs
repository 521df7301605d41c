//! `build_app`: the one router used by `serve` and by the tests.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Request},
};
use tower_http::{
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    routes::{self, api::extract::BODY_LIMIT},
    state::AppState,
};

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        crate::domain::random::base62(20)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

pub fn build_app(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router(&state.config))
        .merge(routes::api::router())
        .merge(routes::oauth::router())
        .merge(routes::admin::router(&state))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // The trace span logs method and path only: never headers (they carry keys) or bodies.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), RandomRequestId))
        .with_state(state)
}
