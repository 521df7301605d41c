//! The last stage: the answer's session settled (bound to the key, or ended),
//! the call's audit line written with the status answered, and the answer's
//! listings filtered to the key's allowlists.

use http::Response;

use super::{
    audit_line::PendingAudit, body::LayerBody, listings::ListingFilter, session::Admitted,
    shared::Shared,
};
use crate::identity::Identity;

/// What the layer answers for the inner service's `response`.
pub(super) async fn finish<B>(
    shared: &Shared,
    (admitted, identity): (&Admitted, &Identity),
    pending: PendingAudit,
    filter: Option<ListingFilter>,
    response: Response<B>,
) -> Response<LayerBody<B>> {
    let response = match super::session::settle(shared, admitted, identity, response).await {
        Ok(response) => response,
        Err(withheld) => {
            pending.finish(Some(withheld.status())).await;
            return withheld.into_response();
        }
    };
    pending.finish(Some(response.status())).await;
    match filter {
        None => response.map(|body| LayerBody::Inner { body }),
        Some(filter) => filter.apply(response),
    }
}
