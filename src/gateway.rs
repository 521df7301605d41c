//! `keysmith gateway`: the verification layer in front of any HTTP or MCP
//! server, whatever its language. A reverse proxy that streams both ways, so
//! Server-Sent Events reach the client as they are produced.

use std::sync::Arc;

use anyhow::Context;
use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, StatusCode, header},
    response::{IntoResponse, Response},
};
use keysmith_verify::{SqlVerifier, VerifyLayer, audit::spawn_sql_audit};

use crate::state::AppState;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

#[derive(Debug, Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// The proxy alone; put a [`VerifyLayer`] on it (see [`run`]).
pub fn proxy(upstream: &str) -> Router {
    let upstream = Upstream {
        base: upstream.trim_end_matches('/').to_owned(),
        // No overall timeout: SSE responses stay open as long as the server streams.
        client: reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client builds"),
    };
    Router::new().fallback(forward).with_state(upstream)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    let has_body = !matches!(
        parts.method,
        http::Method::GET | http::Method::HEAD | http::Method::DELETE
    );
    let mut outgoing = upstream
        .client
        .request(parts.method, format!("{}{path}", upstream.base))
        .headers(parts.headers);
    if has_body {
        outgoing = outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let result = outgoing.send().await;
    match result {
        Ok(response) => {
            let mut builder = Response::builder().status(response.status());
            if let Some(headers) = builder.headers_mut() {
                headers.extend(response.headers().clone());
                strip_hop_by_hop(headers);
            }
            builder
                .body(Body::from_stream(response.bytes_stream()))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(err) => {
            tracing::warn!(error = %err.without_url(), "upstream unreachable");
            (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response()
        }
    }
}

/// Serves the gateway until shutdown: SQL verification against this
/// instance's database, audit written in batches and flushed on the way out.
pub async fn run(
    state: AppState,
    upstream: &str,
    bind: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let verifier = SqlVerifier::new(
        state.pool().clone(),
        state.peppers.clone(),
        state.clock.clone(),
    );
    let (sink, flusher) = spawn_sql_audit(state.pool().clone(), 256, 4096);
    let layer = VerifyLayer::builder(verifier)
        .audit(sink)
        .clock(Arc::clone(&state.clock))
        .build();
    // Revocations made through any server instance reach this cache at once.
    let _listener = match state.db.engine {
        crate::config::Engine::Postgres => Some(
            keysmith_verify::invalidation::listen_postgres(
                state.config.database_url.expose(),
                layer.clone(),
            )
            .await
            .context("failed to listen for key changes")?,
        ),
        crate::config::Engine::Sqlite => None,
    };
    let app = proxy(upstream)
        .layer(layer)
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("failed to bind {bind}"))?;
    tracing::info!(%bind, upstream, "keysmith gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::startup::shutdown_signal())
        .await?;
    let written = flusher.shutdown().await;
    tracing::info!(written, "audit flushed");
    Ok(())
}
