//! The pool against real upstream servers on loopback: which connection
//! each answer came on (the upstream reports the client port it saw), and
//! which connections the pool keeps.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderName, Method, StatusCode, header},
    routing::get,
};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
};

use super::*;

const X_PORT: HeaderName = HeaderName::from_static("x-port");

/// A body of one chunk, then either nothing, forever (an event stream
/// with no second event), or its end; announcing a length if given.
struct OneChunk {
    chunk: &'static [u8],
    sent: bool,
    then_ends: bool,
    announced: Option<u64>,
}

impl OneChunk {
    /// `data: 1`, then nothing.
    fn endless() -> Self {
        Self {
            chunk: b"data: 1\n\n",
            sent: false,
            then_ends: false,
            announced: None,
        }
    }

    /// Three bytes, having announced ten.
    fn short_of_its_length() -> Self {
        Self {
            chunk: b"abc",
            sent: false,
            then_ends: true,
            announced: Some(10),
        }
    }
}

impl HttpBody for OneChunk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if !std::mem::replace(&mut self.sent, true) {
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(self.chunk)))))
        } else if self.then_ends {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.announced
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// An upstream on loopback whose answers name the client port they came on.
async fn upstream() -> SocketAddr {
    let port = |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.port().to_string() };
    let app = Router::new()
        .route("/port", get(port))
        .route(
            "/close",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                ([(header::CONNECTION, "close")], peer.port().to_string())
            }),
        )
        .route(
            "/empty",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                (StatusCode::NO_CONTENT, [(X_PORT, peer.port().to_string())])
            }),
        )
        .route("/endless", get(|| async { Body::new(OneChunk::endless()) }));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

fn pool_for(addr: SocketAddr) -> Pool {
    let tls = keysmith_verify::tls::client_config(None).expect("the Mozilla roots load");
    let target = format!("http://{addr}/").parse().expect("a valid URI");
    Pool::new(super::super::upstream::connector(tls), target)
}

static GET: Method = Method::GET;
static POST: Method = Method::POST;

/// A request with a `Host` field only.
fn request<'a>(
    method: &'a Method,
    target: &'a str,
    body: Body,
) -> Outgoing<'a, impl FnOnce(&mut Vec<u8>)> {
    Outgoing {
        method,
        target,
        fields: |out: &mut Vec<u8>| out.extend_from_slice(b"host: upstream.test\r\n"),
        body,
    }
}

fn get_request(path: &str) -> Outgoing<'_, impl FnOnce(&mut Vec<u8>)> {
    request(&GET, path, Body::empty())
}

/// The client port an answer came on, its body read to the end.
async fn port_of(pool: &Pool, path: &str) -> u16 {
    let answer = pool.send(get_request(path)).await.expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let body = answer
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    std::str::from_utf8(&body)
        .expect("text")
        .parse()
        .expect("a port")
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let pool = pool_for(upstream().await);
    let first = port_of(&pool, "/port").await;
    for _ in 0..5 {
        assert_eq!(port_of(&pool, "/port").await, first);
    }
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn an_answer_the_upstream_ends_with_close_is_not_reused() {
    let pool = pool_for(upstream().await);
    let closed = port_of(&pool, "/close").await;
    let next = port_of(&pool, "/port").await;
    assert_ne!(next, closed, "a connection the upstream closed was reused");
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn an_answer_dropped_half_read_closes_its_connection() {
    let pool = pool_for(upstream().await);
    let before = port_of(&pool, "/port").await;
    let answer = pool.send(get_request("/endless")).await.expect("an answer");
    let mut body = answer.into_body();
    let first = body
        .frame()
        .await
        .expect("a first frame")
        .expect("data")
        .into_data()
        .expect("data");
    assert_eq!(first, "data: 1\n\n");
    drop(body);
    // The stream held the only connection; it is gone, not pooled.
    assert_eq!(pool.idle_count(), 0);
    let after = port_of(&pool, "/port").await;
    assert_ne!(after, before, "a half-read connection was reused");
}

#[tokio::test]
async fn an_empty_answer_dropped_unread_returns_its_connection() {
    let pool = pool_for(upstream().await);
    let answer = pool.send(get_request("/empty")).await.expect("an answer");
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let port: u16 = answer.headers()[&X_PORT]
        .to_str()
        .expect("text")
        .parse()
        .expect("a port");
    drop(answer);
    assert_eq!(pool.idle_count(), 1);
    assert_eq!(port_of(&pool, "/port").await, port);
}

#[tokio::test]
async fn a_concurrent_burst_is_answered_and_every_connection_pooled() {
    let pool = pool_for(upstream().await);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let pool = pool.clone();
        burst.spawn(async move { port_of(&pool, "/port").await });
    }
    let ports: HashSet<u16> = burst.join_all().await.into_iter().collect();
    assert!(!ports.is_empty() && ports.len() <= 32);
    // Every connection went back once its answer ended, none twice; some
    // were opened by requests that another connection served, and are
    // pooled once their connect ends.
    wait_until(|| pool.idle_count() >= ports.len()).await;
    assert!(pool.idle_count() <= 32, "{} idle", pool.idle_count());
    assert!(ports.contains(&port_of(&pool, "/port").await));
}

/// Polls `condition` until it holds (1 ms apart, at most 10 s).
async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the condition never held");
}

/// Reads one request head (the pool sends no request body here).
async fn read_head(socket: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test]
async fn a_request_waiting_on_a_slow_connect_takes_a_connection_that_comes_back() {
    // A listen queue one connection long, and an upstream that accepts one
    // connection only: once a second sits in the queue, the kernel drops
    // every further attempt and a connect hangs (retried after 1 s, 3 s...).
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("a free port");
    let listener = socket.listen(0).expect("listening");
    let addr = listener.local_addr().expect("a bound address");
    let (received, first_received) = oneshot::channel();
    let (release, first_released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut connection, _) = listener.accept().await.expect("one connection");
        let mut gate = Some((received, first_released));
        // Each answer is its number on this connection.
        for number in 1.. {
            if !read_head(&mut connection).await {
                break;
            }
            if let Some((received, released)) = gate.take() {
                let _ = received.send(());
                let _ = released.await;
            }
            let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{number}");
            if connection.write_all(answer.as_bytes()).await.is_err() {
                break;
            }
        }
        drop(listener); // kept until here: it accepts no more
    });
    let pool = pool_for(addr);
    let body_of = |pool: Pool| async move {
        let answer = pool.send(get_request("/")).await?;
        Ok::<_, SendError>(
            answer
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes(),
        )
    };
    let first = tokio::spawn(body_of(pool.clone()));
    first_received
        .await
        .expect("the first request reached the upstream");
    let _queued = TcpStream::connect(addr).await.expect("a queued connection");

    let second = tokio::spawn(body_of(pool.clone()));
    // The second request found no idle connection: it is connecting.
    wait_until(|| pool.waiting_count() == 1).await;
    release
        .send(())
        .expect("the upstream holds the first answer");
    let first = first.await.expect("the first request");
    assert_eq!(first.expect("an answer"), "1");
    // Its connect still hangs (the connector gives up after 5 s): the
    // answer can only have come on the first request's connection, handed
    // over when that answer ended.
    let second = second.await.expect("the second request");
    let second = second.expect("an answer on the connection handed back");
    assert_eq!(second, "2");
}

/// An upstream that answers one request per connection and then closes it
/// without saying so (as a server does when its keep-alive timeout ends).
async fn closing_upstream(accepted: &'static AtomicUsize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            // Dropped: closed.
        }
    });
    addr
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced() {
    static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
    let pool = pool_for(closing_upstream(&ACCEPTED).await);
    for round in 1..=3 {
        let answer = pool.send(get_request("/")).await.expect("an answer");
        let body = answer.into_body().collect().await.expect("a body");
        assert_eq!(body.to_bytes(), "ok", "round {round}");
        // Let the close reach the connection's task.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ACCEPTED.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_connect_error() {
    // A port just freed: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port")
        .local_addr()
        .expect("a bound address");
    let pool = pool_for(addr);
    let err = pool
        .send(get_request("/"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, SendError::Connect(_)), "{err:?}");
    assert_eq!(pool.idle_count(), 0);
}

/// An upstream that writes `answer` to every request head it reads, on
/// every connection, and counts the connections it accepted.
async fn scripted_upstream(answer: &'static [u8], accepted: &'static AtomicUsize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                while read_head(&mut socket).await {
                    if socket.write_all(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_chunked_answer_with_trailers_is_read_whole_and_its_connection_reused() {
    static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n";
    let pool = pool_for(scripted_upstream(answer, &ACCEPTED).await);
    for round in 1..=3 {
        let answer = pool.send(get_request("/")).await.expect("an answer");
        let body = answer.into_body().collect().await.expect("a whole body");
        assert_eq!(body.trailers().expect("trailers")["x-sum"], "5");
        assert_eq!(body.to_bytes(), "abcde", "round {round}");
    }
    assert_eq!(ACCEPTED.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn an_answer_framed_two_ways_is_refused_and_its_connection_closed() {
    static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
    // Read by its length, the answer ends after "0\r\n\r\n"; read chunked, a
    // second answer follows that the next client would be handed.
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret";
    let pool = pool_for(scripted_upstream(answer, &ACCEPTED).await);
    for _ in 0..2 {
        let err = pool.send(get_request("/")).await.expect_err("refused");
        let SendError::Exchange(ExchangeError::Malformed(why)) = err else {
            panic!("not refused as malformed: {err:?}");
        };
        assert_eq!(why.0, "both a length and a transfer coding");
        assert_eq!(pool.idle_count(), 0);
    }
    assert_eq!(
        ACCEPTED.load(Ordering::SeqCst),
        2,
        "a refused connection was reused"
    );
}

#[tokio::test]
async fn bytes_after_an_answers_end_keep_its_connection_out_of_the_pool() {
    static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret";
    let pool = pool_for(scripted_upstream(answer, &ACCEPTED).await);
    for round in 1..=2 {
        let answer = pool.send(get_request("/")).await.expect("an answer");
        let body = answer.into_body().collect().await.expect("a whole body");
        assert_eq!(body.to_bytes(), "ok", "round {round}");
    }
    assert_eq!(
        ACCEPTED.load(Ordering::SeqCst),
        2,
        "a connection with stray bytes was reused"
    );
}

#[tokio::test]
async fn an_answer_cut_short_is_an_error_and_not_pooled() {
    static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            ACCEPTED.fetch_add(1, Ordering::SeqCst);
            if read_head(&mut socket).await {
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort")
                    .await;
            } // closed
        }
    });
    let pool = pool_for(addr);
    let answer = pool.send(get_request("/")).await.expect("a head");
    let err = answer.into_body().collect().await.expect_err("cut short");
    assert!(matches!(err, ExchangeError::Closed), "{err:?}");
    assert_eq!(pool.idle_count(), 0);
}

/// A request body in frames whose number nobody knows beforehand.
fn streamed(frames: &'static [&'static str]) -> Body {
    Body::from_stream(futures_util::stream::iter(frames.iter().map(|frame| {
        Ok::<_, std::io::Error>(Bytes::from_static(frame.as_bytes()))
    })))
}

#[tokio::test]
async fn request_bodies_arrive_whole_with_a_length_or_chunked() {
    let echo = Router::new().route(
        "/echo",
        axum::routing::post(|body: Bytes| async move { body }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, echo).await });
    let pool = pool_for(addr);
    let large = "x".repeat(100_000);
    for (body, expected) in [
        (Body::from("whole"), "whole"),
        (Body::empty(), ""),
        (streamed(&["one ", "two ", "three"]), "one two three"),
        // Larger than what goes out in one write with the head.
        (Body::from(large.clone()), large.as_str()),
    ] {
        let answer = pool
            .send(request(&POST, "/echo", body))
            .await
            .expect("an answer");
        assert_eq!(answer.status(), StatusCode::OK);
        let echoed = answer
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        assert_eq!(echoed, expected.as_bytes());
    }
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_request_body_shorter_than_announced_is_not_sent_as_whole() {
    static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
    let pool = pool_for(
        scripted_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", &ACCEPTED).await,
    );
    let short = request(&POST, "/", Body::new(OneChunk::short_of_its_length()));
    let err = pool.send(short).await.expect_err("refused");
    assert!(
        matches!(err, SendError::Exchange(ExchangeError::RequestLength)),
        "{err:?}"
    );
    assert_eq!(pool.idle_count(), 0);
}
