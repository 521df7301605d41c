//! `build_app`: the one router used by `serve` and by the tests.

use std::time::Instant;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request as AxumRequest},
    http::{HeaderName, Method, Request},
    middleware::{self, Next},
    response::Response,
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
        crate::domain::crypto::random::base62(20)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

pub fn build_app(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router(&state.config))
        .merge(routes::api::router(&state))
        .merge(routes::oauth::router())
        .merge(routes::admin::router(&state))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(access_log))
        // The trace span names method and route template only: never headers
        // (they carry keys), bodies, query strings (the first-run link carries
        // a token) or the raw path (some carry an email).
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %request.method(), route = route_of(request), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), RandomRequestId))
        .with_state(state)
}

/// The router's template for a request (`/api/v1/tenants/{tenant}/keys/{id}`),
/// or `unmatched`: what logs and metrics name instead of the raw path.
fn route_of<B>(request: &Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned())
}

/// Method names as static labels; anything unusual is `OTHER`, so a client
/// cannot mint new label values.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, label)| label)
}

/// One access-log line (target `keysmith::access`) and the HTTP metrics per
/// request, timed to the response head.
async fn access_log(request: AxumRequest, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_of(&request);
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(
        target: "keysmith::access",
        method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    crate::metrics::http_request(method, route, status, elapsed.as_secs_f64());
    response
}
