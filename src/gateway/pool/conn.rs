//! One HTTP/1.1 connection to the upstream, driven by the task of the
//! request it carries.
//!
//! Why not hyper's client connection: it runs in a task of its own, and
//! every exchange crosses to it and back (the request through a channel,
//! the answer's head through another, each body frame through a third),
//! one task wake-up each way. Here the request's own task writes the
//! request and reads the answer, and the answer's body reads the socket
//! itself ([`super::PooledBody`]). The framing rules are in
//! [`super::framing`].

use std::{
    io::Write as _,
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::BytesMut;
use http::Method;
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_util::io::poll_read_buf;

use super::framing::{self, Head, Malformed};

/// What the connector opens: TCP, with TLS for an `https://` upstream.
pub(super) type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The read buffer grows by this much when full.
const READ_CHUNK: usize = 8 * 1024;

/// A request body's frames are written together with the head as long as
/// they fit in this much (one write for a judged MCP body).
const COALESCE: usize = 64 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("writing the request failed")]
    Write(#[source] std::io::Error),
    #[error("reading the answer failed")]
    Read(#[source] std::io::Error),
    #[error("the upstream closed the connection before its answer ended")]
    Closed,
    #[error("the request body failed")]
    RequestBody(#[source] axum::Error),
    #[error("the request body's length differs from the length it announced")]
    RequestLength,
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

/// A request as it goes on the wire.
#[derive(Debug)]
pub struct Outgoing<'a, F> {
    pub method: &'a Method,
    /// The request target in origin form (`/path?query`): checked by
    /// whoever made it, as `http::uri::PathAndQuery` checks it.
    pub target: &'a str,
    /// Writes the header fields, one `name: value\r\n` line each, from
    /// `HeaderName`s and `HeaderValue`s or the gateway's own constants (so
    /// no CR or LF inside), and neither `Content-Length` nor
    /// `Transfer-Encoding`: the body's framing is written here.
    pub fields: F,
    pub body: Body,
}

/// An open connection to the upstream, between exchanges or in one.
#[derive(Debug)]
pub(super) struct Conn {
    /// Boxed: a TLS stream is over a kilobyte, and a connection moves in
    /// and out of the pool and its answer's body on every exchange.
    io: Box<TokioIo<Stream>>,
    /// Bytes read and not yet taken by an answer.
    pub(super) read: BytesMut,
    /// The request head being written; kept for the next request.
    write: Vec<u8>,
}

impl Conn {
    pub(super) fn new(stream: Stream) -> Self {
        Self {
            io: Box::new(TokioIo::new(stream)),
            read: BytesMut::new(),
            write: Vec::new(),
        }
    }

    /// Whether a connection back from the pool can carry a request: the
    /// upstream has neither closed it nor sent anything unasked. One read
    /// attempt, which finds nothing to read on a healthy connection.
    pub(super) fn poll_usable(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        matches!(
            tokio::io::AsyncRead::poll_read(Pin::new(&mut *self.io), cx, &mut probe),
            Poll::Pending
        )
    }

    /// Reads more of the answer into [`Self::read`]: `Ok(0)` at the end of
    /// the stream.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
            self.read.reserve(READ_CHUNK);
        }
        poll_read_buf(Pin::new(&mut *self.io), cx, &mut self.read)
    }

    /// Writes `request` and reads the answer's head.
    pub(super) async fn exchange<F>(
        &mut self,
        request: Outgoing<'_, F>,
    ) -> Result<Head, ExchangeError>
    where
        F: FnOnce(&mut Vec<u8>),
    {
        let method = request.method;
        self.write_request(request).await?;
        // Nothing of the answer can have been read yet: read before parsing.
        loop {
            let read = std::future::poll_fn(|cx| self.poll_fill(cx))
                .await
                .map_err(ExchangeError::Read)?;
            if read == 0 {
                return Err(ExchangeError::Closed);
            }
            if let Some(head) = framing::parse_head(&mut self.read, method)? {
                return Ok(head);
            }
        }
    }

    async fn write_request<F>(&mut self, request: Outgoing<'_, F>) -> Result<(), ExchangeError>
    where
        F: FnOnce(&mut Vec<u8>),
    {
        let Outgoing {
            method,
            target,
            fields,
            mut body,
        } = request;
        let out = &mut self.write;
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        fields(out);
        // A known length is sent as `Content-Length` (a judged MCP body is
        // whole); an unknown one chunked.
        let length = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        match length {
            Some(0) if !expects_body(method) => {}
            // Writing into a `Vec` cannot fail.
            Some(length) => _ = write!(out, "content-length: {length}\r\n"),
            None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
        out.extend_from_slice(b"\r\n");

        let mut sent: u64 = 0;
        while !body.is_end_stream() {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(ExchangeError::RequestBody)?;
            // Request trailers are not forwarded (no upstream asked for them).
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            sent += data.len() as u64;
            if length.is_some_and(|length| sent > length) {
                return Err(ExchangeError::RequestLength);
            }
            let out = &mut self.write;
            if length.is_none() {
                _ = write!(out, "{:x}\r\n", data.len());
            }
            if out.len() + data.len() <= COALESCE {
                out.extend_from_slice(&data);
            } else {
                self.io.write_all(out).await.map_err(ExchangeError::Write)?;
                out.clear();
                self.io
                    .write_all(&data)
                    .await
                    .map_err(ExchangeError::Write)?;
            }
            if length.is_none() {
                self.write.extend_from_slice(b"\r\n");
            }
            // A streamed body's frames reach the upstream as they come, not
            // when the next one does.
            if !body.is_end_stream() {
                self.flush_written().await?;
            }
        }
        match length {
            Some(length) if sent != length => return Err(ExchangeError::RequestLength),
            Some(_) => {}
            None => self.write.extend_from_slice(b"0\r\n\r\n"),
        }
        self.flush_written().await
    }

    /// Writes what [`Self::write`] holds, through TLS when there is one.
    async fn flush_written(&mut self) -> Result<(), ExchangeError> {
        if !self.write.is_empty() {
            self.io
                .write_all(&self.write)
                .await
                .map_err(ExchangeError::Write)?;
            self.write.clear();
        }
        self.io.flush().await.map_err(ExchangeError::Write)
    }
}

/// Methods whose requests carry content as a rule: an empty one is sent
/// `Content-Length: 0`, so that the upstream does not wait for a body; the
/// others are sent no length for no content (RFC 9110 §8.6).
fn expects_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}
