//! The asynchronous stages of the pipeline, each kept out of line under a
//! name of its own, so a profile (`scripts/bench-instructions`) can give
//! every stage its inclusive share. `#[inline(never)]` on an `async fn`
//! reaches only the function that builds the future, not its `poll`
//! (rust-lang/rust#129347): the `poll` of a named wrapper is what keeps a
//! stage's body apart. The cost is one call per poll of a stage.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;

macro_rules! stage {
    ($(#[$doc:meta])* $name:ident) => {
        pin_project! {
            $(#[$doc])*
            pub(super) struct $name<F> {
                #[pin]
                future: F,
            }
        }

        impl<F> $name<F> {
            pub(super) fn new(future: F) -> Self {
                Self { future }
            }
        }

        impl<F: Future> Future for $name<F> {
            type Output = F::Output;

            #[inline(never)]
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
                self.project().future.poll(cx)
            }
        }
    };
}

stage!(
    /// `authenticate.rs`: the key, through the cache.
    Authenticating
);
stage!(
    /// `request_body.rs`: the body read and judged.
    JudgingBody
);
stage!(
    /// `session.rs`: the session the request names, admitted.
    Admitting
);
stage!(
    /// `limited.rs`: the rate limit and quota.
    Limiting
);
