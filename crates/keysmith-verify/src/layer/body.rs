//! The layer's response body: the inner service's, an answer whose
//! listings are filtered to the key's allowlist, or the layer's own refusal. An enum, not
//! a box.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

use super::listings::FilteredBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    #[project = LayerBodyProj]
    #[derive(Debug)]
    pub enum LayerBody<B> {
        /// What the inner service answered, untouched.
        Inner { #[pin] body: B },
        /// An answer read for listings, what the key may not use removed.
        Filtered { #[pin] body: FilteredBody<B> },
        /// The layer's own answer (a refusal).
        Own { #[pin] body: Full<Bytes> },
    }
}

impl<B> LayerBody<B> {
    pub fn own(bytes: impl Into<Bytes>) -> Self {
        Self::Own {
            body: Full::new(bytes.into()),
        }
    }
}

impl<B> Body for LayerBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            LayerBodyProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            LayerBodyProj::Filtered { body } => body.poll_frame(cx),
            LayerBodyProj::Own { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Filtered { body } => body.is_end_stream(),
            Self::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Filtered { .. } => SizeHint::default(),
            Self::Own { body } => body.size_hint(),
        }
    }
}
