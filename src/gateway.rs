//! `keysmith gateway`: the verification layer in front of any HTTP or MCP
//! server, whatever its language. A reverse proxy that streams answers, so
//! Server-Sent Events reach the client as they are produced.
//!
//! It forwards nothing a client could use to speak for the gateway: hop-by-hop
//! headers and the headers a `Connection` header names are dropped both ways
//! (RFC 9110 §7.6.1), client-sent forwarding headers are replaced by the
//! gateway's own, and redirects are passed back to the client rather than
//! followed (a redirect would carry the injected identity elsewhere).
//! A request from a browser page of a foreign origin is refused by the
//! layer's guard ([`origin`]): DNS rebinding stops here.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use axum::body::Bytes;
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use keysmith_verify::{ProtectedResource, TenantScope, limit::RedisLimiter, tls};
use std::convert::Infallible;
use tower::{Layer, Service};

use crate::{config::Config, connections::ConnectionLimits, metrics::access::metrics_allowed};

mod backend;
mod database;
mod headers;
mod origin;
mod pool;
pub mod remote;
mod service;
mod upstream;

use backend::Backend;
pub use backend::VerifySource;

use headers::ClientPeer;
pub use origin::{AllowedOrigin, OriginPolicy};
pub use service::{Gateway, GatewayBody, Proxy, ProxyBody};
use upstream::Upstream;
pub use upstream::UpstreamError;

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
    /// Browser origins let through besides the gateway's own.
    pub allowed_origins: Vec<AllowedOrigin>,
    /// The database, or a Keysmith server (`--verify-url`).
    pub verify: VerifySource,
    /// How long a verdict is trusted before the backend is asked again: the
    /// most a revocation made elsewhere takes to reach this gateway.
    pub cache_ttl: std::time::Duration,
    /// Remote mode: audit events kept while the server cannot take them.
    pub audit_spool: usize,
    /// `--resource`: the public URL that makes the gateway an OAuth
    /// protected resource (canonical form).
    pub resource: Option<String>,
    /// `--threads`: serving threads, each with its own runtime, listener
    /// and upstream connections (0: one per core).
    pub threads: usize,
}

/// `--resource`: an absolute https URL (http only to a loopback host), in
/// its canonical form.
pub fn parse_resource(raw: &str) -> Result<String, String> {
    keysmith_verify::resource::canonical_resource(raw).map_err(|err| err.to_string())
}

/// The protected resource `options` asks for: `--resource`, announcing the
/// issuer of the gateway's tenant at the server's `KEYSMITH_PUBLIC_URL`.
fn protected_resource(
    config: &Config,
    options: &GatewayOptions,
) -> anyhow::Result<Option<ProtectedResource>> {
    let Some(resource) = &options.resource else {
        return Ok(None);
    };
    let TenantScope::Only(slug) = &options.tenant else {
        anyhow::bail!("--resource needs --tenant: a protected resource has one issuer");
    };
    let issuer = crate::domain::oauth::issuer(&config.public_url, slug);
    let resource = ProtectedResource::new(resource, &issuer)?;
    tracing::info!(
        resource = resource.resource(),
        issuer,
        "OAuth protected resource"
    );
    Ok(Some(resource))
}

/// `gateway` with the RFC 9728 metadata routes of `resource`, answered
/// without a key.
pub fn with_metadata_routes<L>(gateway: Gateway<L>, resource: &ProtectedResource) -> Gateway<L> {
    let document = axum::Json(resource.metadata());
    resource
        .metadata_paths()
        .into_iter()
        .fold(gateway, |gateway, path| {
            let document = document.clone();
            gateway.route(&path, axum::routing::get(move || async move { document }))
        })
}

/// A Redis URL, whose `Debug` hides it (it may carry a password).
#[derive(Clone)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(…)")
    }
}

/// The proxy alone; serve it as a [`Gateway`], behind a [`VerifyLayer`]
/// (see [`run`]).
pub fn proxy(upstream: &str, extra_roots_pem: Option<&[u8]>) -> anyhow::Result<Proxy> {
    let tls =
        tls::client_config(extra_roots_pem).context("failed to set up TLS for the upstream")?;
    Ok(Proxy::new(Upstream::new(upstream, tls)?))
}

/// Serves `gateway` under `limits`, with each connection's client known to
/// it, formatted once per connection for the forwarding headers.
pub async fn serve_with<L, B>(
    listener: tokio::net::TcpListener,
    gateway: Gateway<L>,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Layer<Proxy>,
    L::Service:
        Service<Request, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    <L::Service as Service<Request>>::Future: Send + Unpin + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let connection = |addr, body_timeout| gateway.connection(ClientPeer::new(addr), body_timeout);
    crate::connections::serve_each(listener, limits, connection, shutdown).await
}

/// `threads` listeners on `addr` (0: one per core), for [`serve_threads`].
pub fn bind(addr: SocketAddr, threads: usize) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let threads = crate::connections::thread_count(threads);
    crate::connections::bind_shared(addr, threads).with_context(|| format!("failed to bind {addr}"))
}

/// [`serve_with`] on one thread per listener, `gateways[i]` (each with its
/// own [`proxy`], so upstream connections stay on the thread that uses
/// them) on `listeners[i]`; `then` runs once every thread has finished its
/// requests (see [`crate::connections::serve_threads`]).
pub async fn serve_threads<L, B, T>(
    listeners: Vec<std::net::TcpListener>,
    gateways: Vec<Gateway<L>>,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    then: impl Future<Output = T>,
) -> anyhow::Result<T>
where
    L: Layer<Proxy> + Send + 'static,
    L::Service:
        Service<Request, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    <L::Service as Service<Request>>::Future: Send + Unpin + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let apps = gateways
        .into_iter()
        .map(|gateway| {
            move |addr, body_timeout| gateway.connection(ClientPeer::new(addr), body_timeout)
        })
        .collect();
    crate::connections::serve_threads(listeners, apps, limits, shutdown, then).await
}

/// Serves the gateway until shutdown: keys verified against the database
/// or through a Keysmith server, audit written in batches (or delivered to
/// the server) and flushed on the way out.
pub async fn run(config: Config, options: GatewayOptions) -> anyhow::Result<()> {
    crate::metrics::recorder();
    crate::files::restrict_umask();
    if matches!(options.tenant, TenantScope::Any) {
        tracing::warn!(
            "--any-tenant: keys of EVERY tenant pass this gateway; the upstream must tell tenants apart by x-keysmith-tenant"
        );
    }
    if !options.mcp {
        tracing::warn!("--no-mcp: bodies are not read and no allowlist is enforced");
    }
    let roots = match &options.upstream_ca {
        Some(path) => Some(
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?,
        ),
        None => None,
    };
    let mut backend = Backend::start(&config, &options).await?;
    // Bound first: whether its address is loopback decides which names are
    // the gateway's own origin.
    let listeners = bind(options.bind, options.threads)?;
    let addr = listeners[0].local_addr()?;
    let origins = OriginPolicy::new(options.allowed_origins.clone(), addr);
    let mut builder = backend
        .layer_builder(options.tenant.clone())
        .guard(origins)
        .cache_ttl(options.cache_ttl);
    if !options.mcp {
        builder = builder.not_mcp();
    }
    let resource = protected_resource(&config, &options)?;
    if let Some(resource) = &resource {
        builder = builder.protected_resource(resource.clone());
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
    // Built once: its state (cache, limits, audit queue) is shared by every
    // thread; its background tasks stay on this runtime.
    let layer = builder.build();
    let _invalidations = backend.listen(&layer).await?;
    let config = Arc::new(config);
    let apps = listeners
        .iter()
        .map(|_| {
            let gateway = Gateway::new(proxy(&options.upstream, roots.as_deref())?)
                .layer(layer.clone())
                .route("/healthz", axum::routing::get(|| async { "ok" }))
                // The layer's own metrics (outcomes, verify latency, audit
                // queue and spool), outside the layer, guarded like the
                // server's.
                .route(
                    "/metrics",
                    axum::routing::get(metrics).with_state(Arc::clone(&config)),
                );
            Ok(match &resource {
                Some(resource) => with_metadata_routes(gateway, resource),
                None => gateway,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    tracing::info!(%addr, upstream = options.upstream, "keysmith gateway listening");
    let flusher = backend.flusher;
    let flush = async move {
        let written = flusher.shutdown().await;
        tracing::info!(written, "audit flushed");
    };
    serve_threads(
        listeners,
        apps,
        &config.connections,
        crate::connections::shutdown_signal(),
        flush,
    )
    .await
}

async fn metrics(
    State(config): State<Arc<Config>>,
    peer: Option<axum::Extension<ConnectInfo<ClientPeer>>>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.map(|axum::Extension(ConnectInfo(peer))| peer.addr);
    if !metrics_allowed(&config, &headers, peer) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let text = crate::metrics::recorder()
        .map(|handle| handle.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
