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
//! its connection. A connection taken from the stack is first checked for
//! a close or stray bytes from the upstream (one read attempt), and another
//! taken if it shows either; a request that fails once written is not sent
//! again. The connections themselves are [`conn::Conn`]: no task of their
//! own, the request's task drives its exchange.

use std::{
    collections::VecDeque,
    error::Error as StdError,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::oneshot;
use tower::Service;

pub use self::conn::{ExchangeError, Outgoing};
use self::{
    conn::Conn,
    framing::{Decoder, Step},
};

mod conn;
mod framing;

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
    Exchange(#[source] ExchangeError),
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
    /// The oldest, at the front, are closed once past [`IDLE_TIMEOUT`]:
    /// nothing else reads an idle connection, so one the upstream closed
    /// would otherwise keep its socket until it reached the top.
    idle: VecDeque<Idle>,
    /// Requests opening a connection, oldest first: a connection that comes
    /// back goes to the first still waiting rather than to `idle`.
    waiting: VecDeque<oneshot::Sender<Conn>>,
}

/// Where a request gets its connection.
enum Checkout {
    Idle(Conn),
    /// None idle: the request is in the waiting line.
    Waiting(oneshot::Receiver<Conn>),
}

struct Idle {
    conn: Conn,
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

    /// Sends `request` on an idle connection, or a new one, and answers
    /// with a body that returns the connection here once read to the end.
    pub async fn send<F>(&self, request: Outgoing<'_, F>) -> Result<Response<PooledBody>, SendError>
    where
        F: FnOnce(&mut Vec<u8>),
    {
        let mut conn = loop {
            match self.checkout() {
                Checkout::Idle(mut conn) => {
                    // Closed by the upstream while idle: dropped, next one.
                    if std::future::poll_fn(|cx| Poll::Ready(conn.poll_usable(cx))).await {
                        break conn;
                    }
                }
                Checkout::Waiting(handed_back) => {
                    break self.open_or_take_returned(handed_back).await?;
                }
            }
        };
        let head = conn.exchange(request).await.map_err(SendError::Exchange)?;
        let body = PooledBody {
            decoder: head.body,
            home: Some((conn, self.clone())),
            reusable: head.reusable,
        };
        Ok(Response::from_parts(head.parts, body))
    }

    /// The most recently used idle connection still open, or else a place
    /// in the waiting line, taken under the same lock so that no connection
    /// comes back unseen in between.
    fn checkout(&self) -> Checkout {
        let mut connections = self.connections();
        while let Some(Idle { conn, since }) = connections.idle.pop_back() {
            if since.elapsed() <= IDLE_TIMEOUT {
                return Checkout::Idle(conn);
            } // else dropped: closed
        }
        // Places left by requests served meanwhile by their own connect.
        connections.waiting.retain(|waiter| !waiter.is_closed());
        let (waiter, handed_back) = oneshot::channel();
        connections.waiting.push_back(waiter);
        Checkout::Waiting(handed_back)
    }

    /// Opens a connection and, meanwhile, waits for one to come back;
    /// answers with the first.
    async fn open_or_take_returned(
        &self,
        mut handed_back: oneshot::Receiver<Conn>,
    ) -> Result<Conn, SendError> {
        let (deliver, mut opened) = oneshot::channel();
        let pool = self.clone();
        // Its own task, so that it can finish after this request is served.
        tokio::spawn(async move {
            let connected = pool.connect().await;
            if let Err(Ok(conn)) = deliver.send(connected) {
                pool.check_in(conn); // its request took another
            }
        });
        tokio::select! {
            Ok(conn) = &mut handed_back => {
                metrics::counter!(HANDED_BACK).increment(1);
                opened.close();
                // Opened in the very moment: the pool has it.
                if let Ok(Ok(opened)) = opened.try_recv() {
                    self.check_in(opened);
                }
                Ok(conn)
            }
            connected = &mut opened => {
                handed_back.close();
                if let Ok(conn) = handed_back.try_recv() {
                    self.check_in(conn);
                }
                connected.map_err(|_| SendError::Connect("the connecting task ended".into()))?
            }
        }
    }

    /// Takes back a connection whose last answer ended where it should.
    fn check_in(&self, mut conn: Conn) {
        let mut connections = self.connections();
        while let Some(waiter) = connections.waiting.pop_front() {
            match waiter.send(conn) {
                Ok(()) => return,
                Err(unclaimed) => conn = unclaimed, // served meanwhile
            }
        }
        let now = Instant::now();
        while connections
            .idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) > IDLE_TIMEOUT)
        {
            connections.idle.pop_front();
        }
        if connections.idle.len() < MAX_IDLE {
            connections.idle.push_back(Idle { conn, since: now });
        }
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, Connections> {
        // The lists stay consistent whatever panicked while holding them.
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let mut connector = self.shared.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector
            .call(self.shared.target.clone())
            .await
            .map_err(SendError::Connect)?;
        metrics::counter!(CONNECTIONS_OPENED).increment(1);
        Ok(Conn::new(io))
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

/// An upstream answer's body, read from its connection by whoever polls
/// it; the connection goes back to the pool when the body has ended where
/// its framing said, and is closed if the body is dropped before.
pub struct PooledBody {
    decoder: Decoder,
    /// The connection and its pool until the body has ended.
    home: Option<(Conn, Pool)>,
    /// Whether the connection may carry another exchange after this one.
    reusable: bool,
}

impl PooledBody {
    /// The body has ended: its connection goes back unless the upstream
    /// said to close it or sent more than the answer.
    fn ended(&mut self) {
        if let Some((conn, pool)) = self.home.take()
            && self.reusable
            && conn.read.is_empty()
        {
            pool.check_in(conn);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        let this = self.get_mut();
        loop {
            let Some((conn, _)) = this.home.as_mut() else {
                return Poll::Ready(None);
            };
            let failed = match this.decoder.step(&mut conn.read) {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Step::End(trailers)) => {
                    this.ended();
                    return Poll::Ready(trailers.map(|trailers| Ok(Frame::trailers(trailers))));
                }
                Ok(Step::NeedMore) => match std::task::ready!(conn.poll_fill(cx)) {
                    Ok(0) if this.decoder == Decoder::UntilClose => {
                        this.home = None;
                        return Poll::Ready(None);
                    }
                    Ok(0) => ExchangeError::Closed,
                    Ok(_) => continue,
                    Err(err) => ExchangeError::Read(err),
                },
                Err(malformed) => ExchangeError::Malformed(malformed),
            };
            // A connection that failed mid-answer is not reused.
            this.home = None;
            return Poll::Ready(Some(Err(failed)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder
            .remaining()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl Drop for PooledBody {
    /// A body known to have ended (a `HEAD`, a 204, `Content-Length: 0`, the
    /// last byte of a length read) may be dropped without being polled to
    /// its end; its connection is as reusable.
    fn drop(&mut self) {
        if self.decoder.is_end() {
            self.ended();
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
