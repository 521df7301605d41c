//! How `keysmith serve` and `keysmith gateway` hold their clients'
//! connections: a deadline for each request head and body, and a cap on
//! connections served at once, so a client that opens sockets and sends
//! nothing (or a byte at a time) cannot take every file descriptor.

mod deadline_body;
mod open_files;
mod shutdown;
mod tenant_gate;
mod threads;

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Bytes, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, mpsc, watch},
    time::Instant,
};

pub use deadline_body::{BodyTimedOut, DeadlineBody};
pub use open_files::raise_open_file_limit;
pub use shutdown::shutdown_signal;
pub use tenant_gate::TenantGate;
pub use threads::{MAX_THREADS, bind_shared, parse_threads, serve_threads, thread_count};

/// Most connections served at once when none is configured (or half the
/// open-file limit, if that is lower).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long, and how many, connections a server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a connection has to send a whole request head, counted from
    /// when it opens or its previous answer ends: a silent connection, a
    /// half-sent head and an idle keep-alive connection are all closed after
    /// it. Not counted while an answer (an event stream) is being sent.
    pub header_timeout: Duration,
    /// Time a request body has to arrive in full, counted from its head.
    pub body_timeout: Duration,
    /// Connections served at once; the next ones wait (one per serving
    /// thread accepted, unserved; the rest in the listen queue).
    /// `None`: half the open-file limit, at most [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }
}

impl ConnectionLimits {
    /// The cap in force, given the process's open-file limit.
    fn cap(&self, open_files: Option<u64>) -> usize {
        let half = open_files.map_or(DEFAULT_MAX_CONNECTIONS, |limit| {
            usize::try_from(limit / 2).unwrap_or(usize::MAX).max(1)
        });
        match self.max_connections {
            Some(cap) => {
                if cap > half {
                    tracing::warn!(
                        max_connections = cap,
                        open_files,
                        "KEYSMITH_MAX_CONNECTIONS is above half the open-file limit: \
                         the process may run out of file descriptors before the cap"
                    );
                }
                cap
            }
            None => half.min(DEFAULT_MAX_CONNECTIONS),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open
/// connections finish their requests and waits for them. Each request
/// carries `ConnectInfo(peer(client address))`.
pub async fn serve<P>(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    peer: impl Fn(SocketAddr) -> P,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    P: Clone + Send + Sync + 'static,
{
    let service = |addr, body_timeout| ConnectionService {
        app: app.clone(),
        peer: ConnectInfo(peer(addr)),
        body_timeout,
    };
    serve_each(listener, limits, service, shutdown).await
}

/// What serves one connection's requests (made per connection, see
/// [`serve_each`]): any hyper service whose answers can go back on a tokio
/// task.
pub trait ConnectionServe:
    hyper::service::Service<
        http::Request<Incoming>,
        Response = http::Response<Self::Body>,
        Error = Infallible,
        Future = Self::Answer,
    > + Send
    + 'static
{
    type Body: http_body::Body<Data = Bytes, Error: Into<axum::BoxError>> + Send + 'static;
    type Answer: Future<Output = Result<http::Response<Self::Body>, Infallible>> + Send + 'static;
}

impl<S, B> ConnectionServe for S
where
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes, Error: Into<axum::BoxError>> + Send + 'static,
{
    type Body = B;
    type Answer = S::Future;
}

/// Serves each connection on `listener` with `service(client address, body
/// timeout)` until `shutdown` resolves, then lets open connections finish
/// their requests and waits for them. The service puts the body timeout on
/// the bodies it reads (see [`DeadlineBody`]).
pub async fn serve_each<S: ConnectionServe>(
    listener: TcpListener,
    limits: &ConnectionLimits,
    service: impl Fn(SocketAddr, Duration) -> S,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Slots::new(limits.cap(raise_open_file_limit()));
    serve_capped(listener, limits, &slots, service, shutdown).await
}

/// The connection cap: one permit per connection served. Shared by every
/// serving thread of an address (see [`serve_threads`]), so the cap holds
/// for the address as a whole and a thread the kernel hands more
/// connections than the others can use the room they leave. An accept
/// loop takes a slot for a connection it has accepted, so at the cap each
/// loop holds one connection unserved until a slot frees: one open file
/// per loop over the cap.
#[derive(Debug, Clone)]
struct Slots {
    permits: Arc<Semaphore>,
    cap: usize,
}

impl Slots {
    fn new(cap: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
        }
    }
}

/// [`serve_each`] under `slots`, which other accept loops may share.
async fn serve_capped<S: ConnectionServe>(
    listener: TcpListener,
    limits: &ConnectionLimits,
    slots: &Slots,
    service: impl Fn(SocketAddr, Duration) -> S,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let open_files = raise_open_file_limit();
    let cap = slots.cap;
    tracing::info!(
        addr = %listener.local_addr()?,
        max_connections = cap,
        open_files,
        header_timeout_secs = limits.header_timeout.as_secs_f64(),
        body_timeout_secs = limits.body_timeout.as_secs_f64(),
        "connection limits"
    );
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let (stop, stopping) = watch::channel(false);
    // Every connection task holds a clone; the receiver hears `None` once
    // the last of this loop's connections has ended (the slots may be
    // shared with other loops, so they cannot tell).
    let (open, mut all_closed) = mpsc::channel::<Infallible>(1);
    let mut cap_warning = CapWarning::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and the like: the cap keeps them rare; a busy
                    // loop would make them worse.
                    tracing::error!(error = %err, "failed to accept a connection; retrying in 1 s");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        // Accepted first, then given a slot: a loop that held a slot while
        // it waited for a connection would keep that slot from the other
        // loops sharing the cap. At the cap this connection waits here,
        // unserved, and the next ones in the listen queue.
        let slot = match Arc::clone(&slots.permits).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                cap_warning.reached(cap);
                tokio::select! {
                    () = &mut shutdown => break,
                    slot = Arc::clone(&slots.permits).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let service = service(addr, limits.body_timeout);
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _held = (slot, open);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            // Finishes the request in progress, if any, then closes.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    // Nothing is ever sent: `None` once every connection task has ended.
    let _ = all_closed.recv().await;
    Ok(())
}

/// One connection's requests, handed to the app with the client's address
/// and a deadline on their bodies.
#[derive(Clone)]
struct ConnectionService<P> {
    app: Router,
    peer: ConnectInfo<P>,
    body_timeout: Duration,
}

impl<P> hyper::service::Service<http::Request<Incoming>> for ConnectionService<P>
where
    P: Clone + Send + Sync + 'static,
{
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer.clone());
        let deadline = Instant::now() + self.body_timeout;
        let request = request.map(|body| DeadlineBody::new(body, deadline, self.body_timeout));
        tower::Service::call(&mut self.app.clone(), request)
    }
}

/// Says when the cap is reached, at most once a minute (a client that
/// holds the cap would otherwise write a line per connection).
#[derive(Debug, Default)]
struct CapWarning {
    last: Option<Instant>,
}

impl CapWarning {
    fn reached(&mut self, cap: usize) {
        if self
            .last
            .is_some_and(|last| last.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        self.last = Some(Instant::now());
        tracing::warn!(
            max_connections = cap,
            "connection cap reached: new connections wait until one closes \
             (KEYSMITH_MAX_CONNECTIONS)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_half_the_open_files_to_the_rest() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.cap(Some(1024)), 512);
        assert_eq!(limits.cap(Some(1)), 1);
        assert_eq!(limits.cap(Some(1 << 20)), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(limits.cap(None), DEFAULT_MAX_CONNECTIONS);
        let set = ConnectionLimits {
            max_connections: Some(700),
            ..limits
        };
        assert_eq!(
            set.cap(Some(1024)),
            700,
            "a configured cap is kept, with a warning"
        );
    }
}
