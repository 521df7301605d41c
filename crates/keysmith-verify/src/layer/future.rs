//! The response future.
//!
//! Verification awaits a backend (a database or a Keysmith server) behind a
//! trait object, so the work inside cannot be named without boxing; one box
//! per request is cheap next to that await, and a cache hit is still just a
//! hash-map lookup inside it. The type itself has a name, so callers can
//! store it and the box stays an implementation detail.

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
