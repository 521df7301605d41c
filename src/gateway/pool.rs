//! The gateway's keep-alive connections to its one upstream.
//!
//! Why not hyper-util's pooled client: it serves any number of hosts, so
//! every request hashes its (scheme, authority) key into a SipHash map on
//! checkout and again on return, and spawns a task per request to put the
//! connection back once it is idle (about 8k instructions a request,
//! BENCHMARKS.md). The gateway has one upstream: a stack of idle connections
//! behind a mutex does.
//!
//! What it keeps from hyper-util's client: a request that finds no idle
//! connection opens one *and* waits for one to come back, and takes
//! whichever is first; the connection it opened then joins the pool. Under
//! load connections come back every few microseconds, and a connect can
//! take far longer: an upstream whose listen queue is full drops the
//! connection attempt, and the kernel tries again only after a second.
//! Only such a request pays for the race (a task and two channels).
//!
//! A connection goes back on the stack only once its answer has been read to
//! the end (streamed answers such as Server-Sent Events included), so it
//! never carries two exchanges at once; an answer dropped half-read closes
//! its connection (hyper cannot reuse it). A request that a reused
//! connection refused before sending a byte (the upstream closed it while
//! idle) is sent again on another; one a fresh connection failed is not.

use std::{
    collections::VecDeque,
    error::Error as StdError,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::body::Body;
use http::{Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::{
    body::{Bytes, Incoming},
    client::conn::http1::{self, SendRequest},
};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::oneshot;
use tower::Service;

/// How long a connection may sit idle before it is closed rather than
/// reused: under the 60–75 s after which common servers close theirs, so a
/// request rarely meets a connection the upstream is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(55);

/// Idle connections kept at most; more are closed when their answer ends.
const MAX_IDLE: usize = 512;

/// Upstream connections opened, and requests that were opening one when
/// another came back and served them (`/metrics`; the soak reads both).
const CONNECTIONS_OPENED: &str = "keysmith_gateway_upstream_connections_opened_total";
const HANDED_BACK: &str = "keysmith_gateway_upstream_handed_back_total";

pub(super) type Connector = HttpsConnector<HttpConnector>;

/// Why a request got no answer from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("failed to connect to the upstream")]
    Connect(#[source] Box<dyn StdError + Send + Sync>),
    #[error("the upstream connection failed")]
    Exchange(#[source] hyper::Error),
}

/// Connections to one upstream (scheme and authority), reused across
/// requests. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    /// `scheme://authority/`: where a new connection goes.
    target: Uri,
    connections: Mutex<Connections>,
}

#[derive(Default)]
struct Connections {
    /// Last in, first out: the connection used last is the likeliest open.
    idle: Vec<Idle>,
    /// Requests opening a connection, oldest first: a connection that comes
    /// back goes to the first still waiting rather than to `idle`.
    waiting: VecDeque<oneshot::Sender<SendRequest<Body>>>,
}

/// Where a request gets its connection.
enum Checkout {
    Idle(SendRequest<Body>),
    /// None idle: the request is in the waiting line.
    Waiting(oneshot::Receiver<SendRequest<Body>>),
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Pool {
    pub fn new(connector: Connector, target: Uri) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector,
                target,
                connections: Mutex::default(),
            }),
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection,
    /// or a new one, and answers with a body that returns the connection
    /// here once read to the end.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut sender, reused) = match self.checkout() {
                Checkout::Idle(sender) => (sender, true),
                Checkout::Waiting(handed_back) => self.open_or_take_returned(handed_back).await?,
            };
            // Not ready yet only between the end of its last answer and
            // hyper's connection task taking note of it.
            if !sender.is_ready() {
                match sender.ready().await {
                    Ok(()) => {}
                    Err(_) if reused => continue, // closed meanwhile
                    Err(err) => return Err(SendError::Exchange(err)),
                }
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let home = Some((sender, self.clone()));
                    return Ok(response.map(|body| PooledBody { body, home }));
                }
                Err(mut err) => match err.take_message() {
                    // Nothing was sent: the upstream had closed this idle
                    // connection. Another one, or a fresh one, gets it.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Exchange(err.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection still open, or else a place
    /// in the waiting line, taken under the same lock so that no connection
    /// comes back unseen in between.
    fn checkout(&self) -> Checkout {
        let mut connections = self.connections();
        while let Some(Idle { sender, since }) = connections.idle.pop() {
            if since.elapsed() <= IDLE_TIMEOUT && !sender.is_closed() {
                return Checkout::Idle(sender);
            } // else dropped: closed
        }
        // Places left by requests served meanwhile by their own connect.
        connections.waiting.retain(|waiter| !waiter.is_closed());
        let (waiter, handed_back) = oneshot::channel();
        connections.waiting.push_back(waiter);
        Checkout::Waiting(handed_back)
    }

    /// Opens a connection and, meanwhile, waits for one to come back;
    /// answers with the first (`true` when it was one that came back).
    async fn open_or_take_returned(
        &self,
        mut handed_back: oneshot::Receiver<SendRequest<Body>>,
    ) -> Result<(SendRequest<Body>, bool), SendError> {
        let (deliver, mut opened) = oneshot::channel();
        let pool = self.clone();
        // Its own task, so that it can finish after this request is served.
        tokio::spawn(async move {
            let connected = pool.connect().await;
            if let Err(Ok(sender)) = deliver.send(connected) {
                pool.check_in(sender); // its request took another
            }
        });
        tokio::select! {
            Ok(sender) = &mut handed_back => {
                metrics::counter!(HANDED_BACK).increment(1);
                opened.close();
                // Opened in the very moment: the pool has it.
                if let Ok(Ok(sender)) = opened.try_recv() {
                    self.check_in(sender);
                }
                Ok((sender, true))
            }
            connected = &mut opened => {
                handed_back.close();
                if let Ok(sender) = handed_back.try_recv() {
                    self.check_in(sender);
                }
                let connected = connected.map_err(|_| SendError::Connect("the connecting task ended".into()))?;
                Ok((connected?, false))
            }
        }
    }

    fn check_in(&self, mut sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut connections = self.connections();
        while let Some(waiter) = connections.waiting.pop_front() {
            match waiter.send(sender) {
                Ok(()) => return,
                Err(unclaimed) => sender = unclaimed, // served meanwhile
            }
        }
        if connections.idle.len() < MAX_IDLE {
            connections.idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, Connections> {
        // The lists stay consistent whatever panicked while holding them.
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let mut connector = self.shared.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector
            .call(self.shared.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::handshake(io).await.map_err(SendError::Exchange)?;
        metrics::counter!(CONNECTIONS_OPENED).increment(1);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Idle connections held now.
    #[cfg(test)]
    pub fn idle_count(&self) -> usize {
        self.connections().idle.len()
    }

    /// Requests in the waiting line now (some may have been served).
    #[cfg(test)]
    pub fn waiting_count(&self) -> usize {
        self.connections().waiting.len()
    }
}

/// An upstream answer's body; its connection goes back to the pool when the
/// body has ended, and is closed if the body is dropped before.
pub struct PooledBody {
    body: Incoming,
    home: Option<(SendRequest<Body>, Pool)>,
}

impl PooledBody {
    fn go_home(&mut self) {
        if let Some((sender, pool)) = self.home.take() {
            pool.check_in(sender);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            None => self.go_home(),
            // A connection that failed mid-answer is not reused.
            Some(Err(_)) => self.home = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    /// A body known to be empty (a `HEAD`, a 204, `Content-Length: 0`) may be
    /// dropped without being polled; its connection is as reusable.
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.go_home();
        }
    }
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.shared.target)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
