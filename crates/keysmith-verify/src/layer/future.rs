//! The response future, tower-http's way (`auth/async_require_authorization`):
//! a state machine whose states hold what each phase awaits.
//!
//! - **Judging** (boxed): the stages before the inner service. They await
//!   things that cannot be named: the verifier, the session store and the
//!   limiter are trait objects whose methods return boxed futures borrowing
//!   the layer's shared state, and the body is read by an `async` collect
//!   under the cap. Unboxing this phase means a hand-written machine per
//!   stage with owned copies of what each borrows; it is left for the
//!   performance issue, where the gain can be measured.
//! - **Calling** (unboxed): the inner service's own future, polled in place.
//! - **Finishing** (boxed, the slow path only): binding or ending an MCP
//!   session in its store, or waiting for room in a full audit queue. The
//!   common answer (no session change, room in the queue) is finished
//!   synchronously in the Calling state and never boxed.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::{answer::Forwarded, body::LayerBody};

/// The stages before the inner service: the request to forward, or the
/// answer to a refused one.
pub(crate) type Judging<ReqBody, ResBody> = Pin<
    Box<
        dyn Future<Output = Result<(Request<ReqBody>, Forwarded), Response<LayerBody<ResBody>>>>
            + Send,
    >,
>;

type Finishing<ResBody> = Pin<Box<dyn Future<Output = Response<LayerBody<ResBody>>> + Send>>;

pin_project! {
    /// The future of [`super::VerifyService`]'s answer.
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future, ReqBody, ResBody>,
        // The instance `poll_ready` was called on, until the judging ends.
        inner: Option<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ReqBody, ResBody> {
        Judging { judging: Judging<ReqBody, ResBody> },
        Calling { #[pin] future: F, forwarded: Option<Forwarded> },
        Finishing { finishing: Finishing<ResBody> },
        Done,
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn new(judging: Judging<ReqBody, ResBody>, inner: S) -> Self {
        Self {
            state: State::Judging { judging },
            inner: Some(inner),
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Send + 'static,
{
    type Output = Result<Response<LayerBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Judging { judging } => match ready!(judging.as_mut().poll(cx)) {
                    Err(refusal) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(refusal));
                    }
                    Ok((request, forwarded)) => {
                        let mut inner = this.inner.take().expect("judged once");
                        let future = inner.call(request);
                        let forwarded = Some(forwarded);
                        this.state.set(State::Calling { future, forwarded });
                    }
                },
                StateProj::Calling { future, forwarded } => {
                    let outcome = ready!(future.poll(cx));
                    let forwarded = forwarded.take().expect("answered once");
                    // No answer: dropping the call writes its line without a status.
                    let response = match outcome {
                        Ok(response) => response,
                        Err(err) => {
                            drop(forwarded);
                            this.state.set(State::Done);
                            return Poll::Ready(Err(err));
                        }
                    };
                    match forwarded.finish_now(response) {
                        Ok(answer) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(answer));
                        }
                        Err((forwarded, response)) => {
                            let finishing = Box::pin(forwarded.finish(response));
                            this.state.set(State::Finishing { finishing });
                        }
                    }
                }
                StateProj::Finishing { finishing } => {
                    let answer = ready!(finishing.as_mut().poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(answer));
                }
                StateProj::Done => panic!("ResponseFuture polled after it completed"),
            }
        }
    }
}

impl<S, ReqBody, ResBody> fmt::Debug for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::Full;
    use tokio::sync::mpsc;
    use tower::{Layer, ServiceExt, service_fn};

    use crate::{
        audit::{AuditRecord, AuditSink},
        layer::{
            TenantScope, VerifyLayer,
            tests::{ECHO, OneKey, post},
        },
    };

    fn answering(
        status: StatusCode,
    ) -> impl tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<Full<Bytes>>,
        Error = &'static str,
        Future = impl Send,
    > + Clone {
        service_fn(move |_request| async move {
            if status.is_server_error() {
                return Err("the upstream failed");
            }
            let mut response = http::Response::new(Full::new(Bytes::from_static(b"{}")));
            *response.status_mut() = status;
            Ok(response)
        })
    }

    /// A layer auditing into a queue of one, and the queue's other end.
    fn audited() -> (VerifyLayer, mpsc::Receiver<AuditRecord>) {
        let (tx, rx) = mpsc::channel(1);
        let layer = VerifyLayer::builder(OneKey, TenantScope::Any)
            .audit(AuditSink::new(tx))
            .build();
        (layer, rx)
    }

    #[tokio::test]
    async fn an_answer_waits_for_room_in_a_full_audit_queue_then_is_audited() {
        let (layer, mut rx) = audited();
        let service = layer.layer(answering(StatusCode::OK));
        let first = service
            .clone()
            .oneshot(post("application/json", ECHO))
            .await;
        assert_eq!(first.expect("answered").status(), StatusCode::OK);
        // The queue holds the first line: the second answer must wait (the
        // slow path), never drop its line.
        let second = tokio::spawn(service.oneshot(post("application/json", ECHO)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "answered before its line was queued");
        let line = rx.recv().await.expect("the first line");
        assert_eq!((line.status, line.allowed), (Some(200), true));
        let answer = second.await.expect("joined").expect("answered");
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(rx.recv().await.expect("the second line").status, Some(200));
    }

    #[tokio::test]
    async fn a_failed_upstream_still_leaves_its_line_without_a_status() {
        let (layer, mut rx) = audited();
        let service = layer.layer(answering(StatusCode::INTERNAL_SERVER_ERROR));
        let outcome = service.oneshot(post("application/json", ECHO)).await;
        assert_eq!(outcome.err(), Some("the upstream failed"));
        let line = rx.recv().await.expect("the line");
        assert_eq!(
            (line.status, line.allowed, line.tool.as_str()),
            (None, true, "echo")
        );
    }
}
