//! The response future: a named type, so callers can store it and the box
//! inside stays an implementation detail.
//!
//! Why one box is left, per request: every stage before the inner service
//! awaits something it cannot name. The verifier, the session store and the
//! limiter are trait objects whose methods return boxed futures borrowing
//! the layer's shared state (`VerdictFuture`, `StoreFuture`, the limiter's
//! check), and reading the body is an `async` collect under the cap; an
//! unboxed future would have to be a hand-written state machine holding
//! each of those (with `'static` owned copies of what they borrow), plus
//! the inner service's future, the session settle and the audit queue's
//! wait for room. The box costs one allocation next to those awaits, and a
//! cache hit is still a hash-map lookup inside it. Splitting it — the
//! inner service's future unboxed, only the slow paths (cache miss, a
//! session store round trip, a full audit queue) boxed — is the
//! measurement-led work of the performance issue, now that the stages are
//! apart (`service.rs` runs them in order).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::Response;

type Inner<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pub struct ResponseFuture<B, E> {
    inner: Inner<B, E>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn new(
        inner: impl Future<Output = Result<Response<B>, E>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
