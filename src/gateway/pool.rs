//! The gateway's keep-alive connections to its one upstream.
//!
//! Why not hyper-util's pooled client: it serves any number of hosts, so
//! every request hashes its (scheme, authority) key into a SipHash map on
//! checkout and again on return, races a checkout against a connect, and
//! spawns a task per request to put the connection back once it is idle
//! (about 8k instructions a request, BENCHMARKS.md). The gateway has one
//! upstream: a stack of idle connections behind a mutex does.
//!
//! A connection goes back on the stack only once its answer has been read to
//! the end (streamed answers such as Server-Sent Events included), so it
//! never carries two exchanges at once; an answer dropped half-read closes
//! its connection (hyper cannot reuse it). A request that a reused
//! connection refused before sending a byte (the upstream closed it while
//! idle) is sent again on another; one a fresh connection failed is not.

use std::{
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
use tower::Service;

/// How long a connection may sit idle before it is closed rather than
/// reused: under the 60–75 s after which common servers close theirs, so a
/// request rarely meets a connection the upstream is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(55);

/// Idle connections kept at most; more are closed when their answer ends.
const MAX_IDLE: usize = 512;

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
    /// Last in, first out: the connection used last is the likeliest open.
    idle: Mutex<Vec<Idle>>,
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
                idle: Mutex::new(Vec::new()),
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
            let (mut sender, reused) = match self.checkout().await {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
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

    /// The most recently used idle connection still open, if any.
    async fn checkout(&self) -> Option<SendRequest<Body>> {
        loop {
            let Idle { mut sender, since } = self.idle().pop()?;
            if since.elapsed() > IDLE_TIMEOUT || sender.is_closed() {
                continue; // dropped: closed
            }
            // Not ready yet only between the end of its last answer and
            // hyper's connection task taking note of it.
            if sender.is_ready() || sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn check_in(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The list stays consistent whatever panicked while holding it.
        self.shared
            .idle
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
        self.idle().len()
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
