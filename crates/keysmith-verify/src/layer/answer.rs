//! The last stage: the answer's session settled (bound to the key, or ended),
//! the call's audit line written with the status answered, and the answer's
//! listings filtered to the key's allowlists.

use std::sync::Arc;

use http::Response;

use super::{
    audit_line::PendingAudit, body::LayerBody, listings::ListingFilter, session, shared::Shared,
};
use crate::identity::Identity;

/// A call on its way to the inner service: what its answer goes through.
/// Dropped without an answer (the inner service failed, the client went
/// away), its audit line is still written, without a status.
pub(crate) struct Forwarded {
    pub(super) shared: Arc<Shared>,
    pub(super) identity: Arc<Identity>,
    pub(super) admitted: session::Admitted,
    pub(super) pending: PendingAudit,
    pub(super) filter: Option<ListingFilter>,
}

impl Forwarded {
    /// The answer at once when nothing needs an await (no session to bind
    /// or end, room in the audit queue): the common case. Else `Err` gives
    /// the call back, for [`Forwarded::finish`].
    #[expect(
        clippy::result_large_err,
        reason = "the call is handed back by value, once per request on the slow path only"
    )]
    // Out of line: a stage a profile names (scripts/bench-instructions).
    #[inline(never)]
    pub(super) fn finish_now<B>(
        mut self,
        response: Response<B>,
    ) -> Result<Response<LayerBody<B>>, (Self, Response<B>)> {
        if !session::nothing_to_settle(&self.shared, &self.admitted, &response)
            || !self.pending.try_finish(response.status())
        {
            return Err((self, response));
        }
        Ok(self.filtered(response))
    }

    /// The answer, once its session is settled and its line queued.
    pub(super) async fn finish<B>(self, response: Response<B>) -> Response<LayerBody<B>> {
        let settled = session::settle(&self.shared, &self.admitted, &self.identity, response);
        let response = match settled.await {
            Ok(response) => response,
            Err(withheld) => {
                self.pending.finish(Some(withheld.status())).await;
                return withheld.into_response();
            }
        };
        let Self {
            pending, filter, ..
        } = self;
        pending.finish(Some(response.status())).await;
        filter_answer(filter, response)
    }

    fn filtered<B>(self, response: Response<B>) -> Response<LayerBody<B>> {
        filter_answer(self.filter, response)
    }
}

fn filter_answer<B>(
    filter: Option<ListingFilter>,
    response: Response<B>,
) -> Response<LayerBody<B>> {
    match filter {
        None => response.map(|body| LayerBody::Inner { body }),
        Some(filter) => filter.apply(response),
    }
}
