//! What the gateway serves, without a router on the proxied path.
//!
//! Every request but the gateway's own few routes (`/healthz`, `/metrics`,
//! the protected-resource metadata) goes to the proxy, through the layer.
//! An axum `Router` in front of that path cost each call its route match,
//! its handler's extractors, a boxed future per layer of its stack and a
//! `ConnectInfo` extension (4.6k instructions a call,
//! `scripts/bench-instructions`). Here a connection's service compares the
//! path with the own routes' exact paths and otherwise calls the layered
//! proxy, built once per connection with the client's address in it.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Bytes;
use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, Response, StatusCode},
    routing::{MethodRouter, future::RouteFuture},
};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::time::Instant;
use tower::{Layer, Service, layer::util::Identity};

use super::{
    headers::{ClientPeer, write_request_fields},
    pool::{ExchangeError, Outgoing, PooledBody, SendError},
    upstream::Upstream,
};
use crate::connections::DeadlineBody;

/// An upstream's answer, or the proxy's own refusal of a request it cannot
/// forward.
pub type ProxyBody = Either<PooledBody, Full<Bytes>>;

/// What a connection answers with: an own route's body, or the proxied
/// service's.
pub type GatewayBody<B> = Either<Body, B>;

/// The reverse proxy for one connection: forwards every request to the
/// upstream, with forwarding headers naming the connection's client.
/// Cheap to clone (the layer clones it per request).
#[derive(Clone, Debug)]
pub struct Proxy {
    to: Arc<Forwarding>,
}

#[derive(Debug)]
struct Forwarding {
    upstream: Upstream,
    peer: Option<ClientPeer>,
}

impl Proxy {
    pub(super) fn new(upstream: Upstream) -> Self {
        Self {
            to: Arc::new(Forwarding {
                upstream,
                peer: None,
            }),
        }
    }

    /// This proxy, for the connection of `peer`.
    fn for_peer(&self, peer: ClientPeer) -> Self {
        Self {
            to: Arc::new(Forwarding {
                upstream: self.to.upstream.clone(),
                peer: Some(peer),
            }),
        }
    }
}

impl Service<Request<Body>> for Proxy {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let to = Arc::clone(&self.to);
        Box::pin(async move { Ok(to.forward(request).await) })
    }
}

impl Forwarding {
    async fn forward(&self, request: Request<Body>) -> Response<ProxyBody> {
        let upstream = &self.upstream;
        let (parts, body) = request.into_parts();
        let target = upstream.target_for(parts.uri.path_and_query());
        // The client's fields are written straight into the upstream
        // request's head, without editing a map: see `headers.rs`.
        let outgoing = Outgoing {
            method: &parts.method,
            target: &target,
            fields: |out: &mut Vec<u8>| {
                write_request_fields(out, &parts.headers, self.peer.as_ref(), &upstream.host);
            },
            body,
        };
        // The answer's connection-scoped fields were left out as its head
        // was read (`pool/framing.rs`).
        match upstream.send(outgoing).await {
            Ok(response) => response.map(Either::Left),
            Err(SendError::Exchange(ExchangeError::Malformed(malformed))) => {
                tracing::warn!(error = %malformed, "upstream answer refused");
                plain(StatusCode::BAD_GATEWAY, "unusable upstream answer")
            }
            Err(err) => {
                // The error names no URL; its source says why (refused, TLS,
                // closed mid-answer...).
                let cause = std::error::Error::source(&err).map(ToString::to_string);
                tracing::warn!(error = %err, cause, "upstream unreachable");
                plain(StatusCode::BAD_GATEWAY, "upstream unreachable")
            }
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The proxy behind a layer (the verification layer; none for the proxy
/// alone), and the gateway's own routes, answered without it.
#[derive(Clone)]
pub struct Gateway<L = Identity> {
    proxy: Proxy,
    layer: L,
    own: Router,
    /// The own routes' exact paths: a request for any other path is proxied.
    own_paths: Arc<[String]>,
}

impl<L> std::fmt::Debug for Gateway<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("proxy", &self.proxy)
            .field("own_paths", &self.own_paths)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The proxy alone, with no own routes.
    pub fn new(proxy: Proxy) -> Self {
        Self {
            proxy,
            layer: Identity::new(),
            own: Router::new(),
            own_paths: Arc::from([]),
        }
    }
}

impl<L> Gateway<L> {
    /// The same gateway with every proxied request going through `layer`.
    pub fn layer<L2>(self, layer: L2) -> Gateway<L2> {
        Gateway {
            proxy: self.proxy,
            layer,
            own: self.own,
            own_paths: self.own_paths,
        }
    }

    /// An own route at exactly `path`, answered without the layer.
    #[must_use]
    pub fn route(self, path: &str, method_router: MethodRouter) -> Self {
        let own_paths = self
            .own_paths
            .iter()
            .cloned()
            .chain([path.to_owned()])
            .collect();
        Self {
            own: self.own.route(path, method_router),
            own_paths,
            ..self
        }
    }

    /// The service of one connection from `peer`.
    pub(crate) fn connection(
        &self,
        peer: ClientPeer,
        body_timeout: Duration,
    ) -> Connection<L::Service>
    where
        L: Layer<Proxy>,
    {
        Connection {
            proxied: self.layer.layer(self.proxy.for_peer(peer.clone())),
            own: self.own.clone(),
            own_paths: Arc::clone(&self.own_paths),
            peer: ConnectInfo(peer),
            body_timeout,
        }
    }
}

/// One connection's requests: the own routes by exact path, the rest
/// proxied; every body with a deadline.
pub(crate) struct Connection<S> {
    proxied: S,
    own: Router,
    own_paths: Arc<[String]>,
    peer: ConnectInfo<ClientPeer>,
    body_timeout: Duration,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Connection<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    S::Future: Unpin,
{
    type Response = Response<GatewayBody<B>>;
    type Error = Infallible;
    type Future = Answering<S::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let deadline = Instant::now() + self.body_timeout;
        let mut request =
            request.map(|body| Body::new(DeadlineBody::new(body, deadline, self.body_timeout)));
        let path = request.uri().path();
        if self.own_paths.iter().any(|own| own == path) {
            request.extensions_mut().insert(self.peer.clone());
            return Answering::Own(Box::pin(self.own.clone().call(request)));
        }
        // Always ready: the proxy is, and the layer is when its inner is.
        Answering::Proxied(self.proxied.clone().call(request))
    }
}

/// The answer of a [`Connection`].
pub(crate) enum Answering<F> {
    Own(Pin<Box<RouteFuture<Infallible>>>),
    Proxied(F),
}

impl<F, B> Future for Answering<F>
where
    F: Future<Output = Result<Response<B>, Infallible>> + Unpin,
{
    type Output = Result<Response<GatewayBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Own(own) => own
                .as_mut()
                .poll(cx)
                .map_ok(|response| response.map(Either::Left)),
            Self::Proxied(proxied) => Pin::new(proxied)
                .poll(cx)
                .map_ok(|response| response.map(Either::Right)),
        }
    }
}
