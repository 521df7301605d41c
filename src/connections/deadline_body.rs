//! A request body that must arrive by a deadline: a client that sends its
//! head and then the body a byte at a time holds its connection only so long.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The body was not received in full within the connection's body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

/// `inner`, failing with [`BodyTimedOut`] once `deadline` has passed.
#[derive(Debug)]
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    timeout: Duration,
    /// Made only when the body is not all there at once (most are).
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, deadline: Instant, timeout: Duration) -> Self {
        Self {
            inner,
            deadline,
            timeout,
            timer: None,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    #[tokio::test]
    async fn a_body_still_arriving_at_the_deadline_fails() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let stream = tokio_stream_from(rx);
        let timeout = Duration::from_millis(200);
        let mut body =
            DeadlineBody::new(StreamBody::new(stream), Instant::now() + timeout, timeout);
        tx.send(Ok(Frame::data(Bytes::from_static(b"{"))))
            .await
            .expect("send");
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().ok(), Some(Bytes::from_static(b"{")));
        let err = body
            .frame()
            .await
            .expect("an error")
            .expect_err("timed out");
        assert!(err.is::<BodyTimedOut>(), "{err}");
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_that_arrives_in_time_passes_whole() {
        let timeout = Duration::from_millis(200);
        let body = DeadlineBody::new(
            http_body_util::Full::new(Bytes::from_static(b"{}")),
            Instant::now() + timeout,
            timeout,
        );
        let bytes = body.collect().await.expect("whole").to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"{}"));
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Unpin {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
