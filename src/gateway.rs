//! `keysmith gateway`: the verification layer in front of any HTTP or MCP
//! server, whatever its language. A reverse proxy that streams answers, so
//! Server-Sent Events reach the client as they are produced.
//!
//! It forwards nothing a client could use to speak for the gateway: hop-by-hop
//! headers and the headers a `Connection` header names are dropped both ways
//! (RFC 9110 §7.6.1), client-sent forwarding headers are replaced by the
//! gateway's own, and redirects are passed back to the client rather than
//! followed (a redirect would carry the injected identity elsewhere).

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use keysmith_verify::{
    SqlVerifier, TenantScope, VerifyLayer, audit::spawn_sql_audit, limit::RedisLimiter, tls,
};

use crate::{domain::tenants, state::AppState};

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Forwarding headers a client could forge; the gateway writes its own.
const FORWARDING: [&str; 7] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
];

/// What `keysmith gateway` was asked to do.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub upstream: String,
    pub bind: SocketAddr,
    pub tenant: TenantScope,
    /// MCP mode: every body judged as one JSON-RPC message, tools enforced.
    pub mcp: bool,
    /// PEM roots trusted for an `https://` upstream, besides the Mozilla ones.
    pub upstream_ca: Option<PathBuf>,
    /// `KEYSMITH_REDIS_URL`: limits shared through Redis; absent: per instance.
    pub redis_url: Option<RedisUrl>,
}

/// A Redis URL, whose `Debug` hides it (it may carry a password).
#[derive(Clone)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(…)")
    }
}

#[derive(Debug, Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// The proxy alone; put a [`VerifyLayer`] on it (see [`run`]).
pub fn proxy(upstream: &str, extra_roots_pem: Option<&[u8]>) -> anyhow::Result<Router> {
    // No overall timeout: SSE responses stay open as long as the server streams.
    let client = tls::client_builder(extra_roots_pem)
        .context("failed to set up TLS for the upstream")?
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .context("failed to build the upstream client")?;
    let upstream = Upstream {
        base: upstream.trim_end_matches('/').to_owned(),
        client,
    };
    Ok(Router::new().fallback(forward).with_state(upstream))
}

/// Serves `app` with the peer address known to it (for `X-Forwarded-For`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Removes hop-by-hop headers, and first the headers `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::try_from(token.trim()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Replaces whatever forwarding headers the client sent with the gateway's.
fn set_forwarding(headers: &mut HeaderMap, peer: Option<SocketAddr>, host: Option<HeaderValue>) {
    for name in FORWARDING {
        headers.remove(name);
    }
    let mut forwarded = vec!["proto=http".to_owned()];
    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        forwarded.insert(0, format!("for=\"{}\"", forwarded_node(peer)));
        if let Ok(value) = HeaderValue::from_str(&ip) {
            headers.insert("x-forwarded-for", value);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host.filter(|h| h.to_str().is_ok_and(is_host)) {
        if let Ok(text) = host.to_str() {
            forwarded.push(format!("host=\"{text}\""));
        }
        headers.insert("x-forwarded-host", host);
    }
    if let Ok(value) = HeaderValue::from_str(&forwarded.join(";")) {
        headers.insert("forwarded", value);
    }
}

/// `Forwarded: for=` wants IPv6 addresses in brackets (RFC 7239 §6).
fn forwarded_node(peer: SocketAddr) -> String {
    match peer {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    }
}

/// A Host value safe to repeat inside a quoted `Forwarded` parameter.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    strip_hop_by_hop(&mut parts.headers);
    let host = parts.headers.remove(header::HOST);
    set_forwarding(&mut parts.headers, peer, host);
    let mut outgoing = upstream
        .client
        .request(parts.method, format!("{}{path}", upstream.base))
        .headers(parts.headers);
    // A body the layer has read and judged is in memory: sent whole, with its
    // length. Otherwise (not MCP) it streams.
    match http_body::Body::size_hint(&body).exact() {
        Some(0) => {}
        Some(_) => match body.collect().await {
            Ok(collected) => outgoing = outgoing.body(collected.to_bytes()),
            Err(_) => return (StatusCode::BAD_REQUEST, "unreadable request body").into_response(),
        },
        None => outgoing = outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream())),
    }
    match outgoing.send().await {
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
pub async fn run(state: AppState, options: GatewayOptions) -> anyhow::Result<()> {
    match &options.tenant {
        TenantScope::Only(slug) => {
            tenants::find_by_slug(state.pool(), slug)
                .await?
                .with_context(|| format!("no tenant with the slug `{slug}` (--tenant)"))?;
        }
        TenantScope::Any => tracing::warn!(
            "--any-tenant: keys of EVERY tenant pass this gateway; the upstream must tell tenants apart by x-keysmith-tenant"
        ),
    }
    if !options.mcp {
        tracing::warn!("--no-mcp: bodies are not read and no tool allowlist is enforced");
    }
    let roots = match &options.upstream_ca {
        Some(path) => Some(
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?,
        ),
        None => None,
    };
    let verifier = SqlVerifier::new(
        state.pool().clone(),
        state.peppers.clone(),
        state.clock.clone(),
    );
    let (sink, flusher) = spawn_sql_audit(state.pool().clone(), 256, 4096);
    let mut builder = VerifyLayer::builder(verifier, options.tenant.clone())
        .audit(sink)
        .clock(Arc::clone(&state.clock));
    if !options.mcp {
        builder = builder.not_mcp();
    }
    if let Some(url) = &options.redis_url {
        let limiter = RedisLimiter::builder()
            .connect(&url.0)
            .context("KEYSMITH_REDIS_URL is invalid")?;
        builder = builder.limiter(limiter);
        tracing::info!("rate limits and quotas shared through Redis");
    } else {
        tracing::info!(
            "rate limits and quotas counted in this instance only (no KEYSMITH_REDIS_URL)"
        );
    }
    let layer = builder.build();
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
    let metrics_state = state.clone();
    let app = proxy(&options.upstream, roots.as_deref())?
        .layer(layer)
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        // The layer's own metrics (outcomes, verify latency, audit queue),
        // outside the layer, guarded like the server's.
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let state = metrics_state.clone();
                async move {
                    if !crate::routes::health::metrics_allowed(&state.config, &headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let text = crate::metrics::recorder()
                        .map(|handle| handle.render())
                        .unwrap_or_default();
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .with_context(|| format!("failed to bind {}", options.bind))?;
    tracing::info!(bind = %options.bind, upstream = options.upstream, "keysmith gateway listening");
    serve(listener, app, crate::startup::shutdown_signal()).await?;
    let written = flusher.shutdown().await;
    tracing::info!(written, "audit flushed");
    Ok(())
}
