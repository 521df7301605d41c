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
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Forwarding headers a client could forge; the gateway writes its own.
const FORWARDING: [HeaderName; 7] = [
    header::FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-real-ip"),
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

type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Where requests go: the base URI parsed once, and a pooled HTTP/1.1
/// client (keep-alive connections reused across requests).
#[derive(Clone)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// The base URI's path without its trailing `/` ("" for none), put in
    /// front of every request's path.
    prefix: Arc<str>,
    /// The `Host` the upstream is sent: what hyper would derive from the
    /// URI (without the scheme's default port), built once here rather than
    /// formatted by the client on every request.
    host: HeaderValue,
    client: UpstreamClient,
}

/// An upstream base URI the gateway cannot use.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("--upstream must be an absolute http:// or https:// URL: {0}")]
    NotHttp(String),
    #[error("--upstream must not carry a query string or credentials")]
    Extra,
}

impl Upstream {
    fn new(base: &str, mut tls: tls::ClientConfig) -> Result<Self, UpstreamError> {
        let not_http = || UpstreamError::NotHttp(base.to_owned());
        let uri: Uri = base.parse().map_err(|_| not_http())?;
        let scheme = uri.scheme().cloned().ok_or_else(not_http)?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(not_http());
        }
        let authority = uri.authority().cloned().ok_or_else(not_http)?;
        if uri.query().is_some() || authority.as_str().contains('@') {
            return Err(UpstreamError::Extra);
        }
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", authority.host()),
            _ => authority.host().to_owned(),
        };
        let host = HeaderValue::try_from(host).map_err(|_| not_http())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        // No overall timeout: SSE responses stay open as long as the server streams.
        http.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        // hyper-rustls sets ALPN itself from the protocols enabled below.
        tls.alpn_protocols.clear();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            scheme,
            authority,
            prefix: uri.path().trim_end_matches('/').into(),
            host,
            // The legacy client follows no redirect: a 3xx goes back to the client.
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The upstream URI for a request's path and query.
    fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let path = path_and_query.map_or("/", PathAndQuery::as_str);
        let path_and_query = if self.prefix.is_empty() {
            match path_and_query {
                Some(pq) => pq.clone(),
                None => PathAndQuery::from_static("/"),
            }
        } else {
            PathAndQuery::try_from(format!("{}{path}", self.prefix))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// The proxy alone; put a [`VerifyLayer`] on it (see [`run`]).
pub fn proxy(upstream: &str, extra_roots_pem: Option<&[u8]>) -> anyhow::Result<Router> {
    let tls =
        tls::client_config(extra_roots_pem).context("failed to set up TLS for the upstream")?;
    let upstream = Upstream::new(upstream, tls)?;
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
    for name in &FORWARDING {
        headers.remove(name);
    }
    // `Forwarded: for="<peer>";proto=http;host="<host>"`, built in one string
    // from the peer address formatted once (this runs on every request).
    let mut forwarded = String::with_capacity(64);
    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        // RFC 7239 §6: an IPv6 node goes in brackets.
        let (open, close) = if peer.is_ipv6() { ("[", "]") } else { ("", "") };
        for part in ["for=\"", open, &ip, close, "\";"] {
            forwarded.push_str(part);
        }
        if let Ok(value) = HeaderValue::try_from(ip) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    forwarded.push_str("proto=http");
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = host.filter(|h| h.to_str().is_ok_and(is_host)) {
        if let Ok(text) = host.to_str() {
            for part in [";host=\"", text, "\""] {
                forwarded.push_str(part);
            }
        }
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Ok(value) = HeaderValue::try_from(forwarded) {
        headers.insert(header::FORWARDED, value);
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
    let Ok(uri) = upstream.uri_for(parts.uri.path_and_query()) else {
        return (StatusCode::BAD_REQUEST, "unusable request path").into_response();
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    strip_hop_by_hop(&mut parts.headers);
    // The client's Host goes into the forwarding headers; the upstream is
    // sent its own.
    let host = parts.headers.insert(header::HOST, upstream.host.clone());
    set_forwarding(&mut parts.headers, peer, host);
    // hyper writes the length the body knows: exact for a body the layer has
    // read and judged (sent whole), chunked for a streamed one (not MCP).
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut outgoing = http::Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.headers_mut() = parts.headers;
    match upstream.client.request(outgoing).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(err) => {
            // The error names no URL; its source says why (refused, TLS...).
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            tracing::warn!(error = %err, cause, "upstream unreachable");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(base: &str) -> Result<Upstream, UpstreamError> {
        Upstream::new(
            base,
            tls::client_config(None).expect("the Mozilla roots load"),
        )
    }

    #[test]
    fn only_plain_http_or_https_base_urls_are_upstreams() {
        for bad in [
            "ftp://example.test",
            "example.test:80",
            "/relative",
            "http://user:pw@example.test",
            "http://example.test/?q=1",
        ] {
            assert!(upstream(bad).is_err(), "{bad} was accepted");
        }
        assert!(upstream("https://example.test").is_ok());
    }

    #[test]
    fn request_paths_follow_the_base_path() {
        let pq = |s: &'static str| PathAndQuery::from_static(s);
        let bare = upstream("http://127.0.0.1:9000/").expect("a valid base");
        let uri = bare.uri_for(Some(&pq("/mcp?x=1"))).expect("a valid path");
        assert_eq!(uri.to_string(), "http://127.0.0.1:9000/mcp?x=1");
        assert_eq!(
            bare.uri_for(None).expect("a valid path").to_string(),
            "http://127.0.0.1:9000/"
        );
        let nested = upstream("https://example.test/api/").expect("a valid base");
        let uri = nested.uri_for(Some(&pq("/mcp"))).expect("a valid path");
        assert_eq!(uri.to_string(), "https://example.test/api/mcp");
    }

    #[test]
    fn the_upstream_is_sent_its_own_host() {
        for (base, host) in [
            ("http://127.0.0.1:9000/", "127.0.0.1:9000"),
            ("http://mcp.test:80/api", "mcp.test"),
            ("http://mcp.test:443", "mcp.test:443"),
            ("https://mcp.test:443", "mcp.test"),
            ("https://mcp.test:8443/", "mcp.test:8443"),
            ("http://[::1]:9000", "[::1]:9000"),
        ] {
            let upstream = upstream(base).expect("a valid base");
            assert_eq!(upstream.host, host, "{base}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-secret, keep-alive"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let untouched = {
            let mut kept = HeaderMap::new();
            kept.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            kept
        };
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
        // Nothing to drop: nothing changes.
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
        // An upgrade alone, without `Connection`, is still dropped.
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
    }

    #[test]
    fn forwarding_headers_are_the_gateways_own() {
        let forwarded = |peer: &str, host: &'static str| {
            let mut headers = HeaderMap::new();
            for name in &FORWARDING {
                headers.insert(name, HeaderValue::from_static("spoofed"));
            }
            let peer = peer.parse().ok();
            set_forwarding(&mut headers, peer, Some(HeaderValue::from_static(host)));
            let text = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().expect("ASCII").to_owned())
            };
            (
                text("forwarded"),
                text("x-forwarded-for"),
                text("x-forwarded-host"),
                text("x-real-ip"),
            )
        };
        assert_eq!(
            forwarded("10.0.0.7:5000", "mcp.test:8080"),
            (
                Some(r#"for="10.0.0.7";proto=http;host="mcp.test:8080""#.into()),
                Some("10.0.0.7".into()),
                Some("mcp.test:8080".into()),
                None,
            )
        );
        // IPv6 in brackets (RFC 7239 §6); a Host that could break out of the
        // quoted parameter is dropped rather than repeated.
        assert_eq!(
            forwarded("[2001:db8::1]:5000", "evil\";for=1.2.3.4"),
            (
                Some(r#"for="[2001:db8::1]";proto=http"#.into()),
                Some("2001:db8::1".into()),
                None,
                None,
            )
        );
        // No peer known: no address is made up.
        assert_eq!(forwarded("not an address", "mcp.test").1, None);
    }
}
