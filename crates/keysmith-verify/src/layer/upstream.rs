//! The forward stage: the request as the inner service gets it. The
//! verified identity is injected (headers and extensions), anything a client
//! sent that could pass for it is scrubbed, the credential removed, and an
//! answer that will be filtered is asked for uncompressed.

use http::{Request, header, request::Parts};

use crate::identity::Identity;

use super::headers;

/// The request to hand the inner service; `filtered`: its answer will be
/// read for listings (an answer the filter could not read would be refused
/// whole, so none may come compressed).
// Out of line: a stage a profile names (scripts/bench-instructions).
#[inline(never)]
pub(super) fn request<B>(
    mut parts: Parts,
    body: B,
    identity: &Identity,
    filtered: bool,
) -> Request<B> {
    if filtered {
        parts.headers.remove(header::ACCEPT_ENCODING);
    }
    headers::scrub(&mut parts.headers);
    headers::inject(&mut parts.headers, &identity.headers);
    parts.extensions.insert(identity.key.clone());
    Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        layer::{KEY_ID_HEADER, TENANT_HEADER, tests::good_key},
        outcome::VerifiedKey,
    };

    fn identity() -> Identity {
        Identity::new(good_key())
    }

    fn head() -> Parts {
        let request = Request::builder()
            .header(header::AUTHORIZATION, "Bearer secret")
            .header(header::ACCEPT_ENCODING, "gzip")
            .header("x_keysmith_tenant", "forged")
            .body(());
        request.expect("request").into_parts().0
    }

    #[test]
    fn the_inner_service_sees_the_identity_and_never_the_key() {
        let request = request(head(), (), &identity(), false);
        let headers = request.headers();
        assert!(!headers.contains_key(header::AUTHORIZATION));
        assert!(!headers.contains_key("x_keysmith_tenant"));
        assert_eq!(headers[TENANT_HEADER], "acme");
        assert_eq!(headers[KEY_ID_HEADER], "k1");
        assert_eq!(headers[header::ACCEPT_ENCODING], "gzip");
        let key = request.extensions().get::<Arc<VerifiedKey>>().expect("key");
        assert_eq!(key.key_id, "k1");
    }

    #[test]
    fn an_answer_to_filter_is_asked_for_uncompressed() {
        let request = request(head(), (), &identity(), true);
        assert!(!request.headers().contains_key(header::ACCEPT_ENCODING));
    }
}
