//! The response future.
//!
//! Verification awaits a backend (a database or a Keysmith server) behind a
//! trait object, so the future cannot be named without boxing; one box per
//! request is cheap next to that await, and a cache hit is still just a lock
//! and a hash-map lookup inside it.

use std::{future::Future, pin::Pin};

use http::Response;

pub type ResponseFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;
