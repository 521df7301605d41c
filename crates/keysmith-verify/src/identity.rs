//! A verified key as the layer uses it on every request: made once when the
//! verdict is cached, then shared. A request costs a reference count where it
//! used to cost a deep copy of the key (five strings, two lists), four header
//! values and three more strings for its audit line.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::{
    layer::{KEY_ID_HEADER, SERVICE_USER_HEADER, SERVICE_USER_ID_HEADER, TENANT_HEADER},
    outcome::VerifiedKey,
};

/// What the layer needs of a verified key.
#[derive(Debug)]
pub(crate) struct Identity {
    /// Handed to the inner service in the request's extensions.
    pub key: Arc<VerifiedKey>,
    /// The identity headers the layer injects (a value that is not a valid
    /// header is left out, as before).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The audit line's ids, shared by every line of this key.
    pub audit: AuditIds,
}

#[derive(Debug, Clone)]
pub(crate) struct AuditIds {
    pub tenant_id: Arc<str>,
    pub key_id: Arc<str>,
    pub service_user_id: Arc<str>,
    /// A token's grant and client, from its cached verdict (no lookup per
    /// call); `None` for a key.
    pub grant_id: Option<Arc<str>>,
    pub client_id: Option<Arc<str>>,
}

impl AuditIds {
    pub fn of(key: &VerifiedKey) -> Self {
        let token = key.token.as_ref();
        Self {
            tenant_id: key.tenant_id.as_str().into(),
            key_id: key.key_id.as_str().into(),
            service_user_id: key.service_user_id.as_str().into(),
            grant_id: token.and_then(|t| t.grant_id.as_deref()).map(Arc::from),
            client_id: token.and_then(|t| t.client_id.as_deref()).map(Arc::from),
        }
    }
}

impl Identity {
    pub fn new(key: VerifiedKey) -> Self {
        let headers = [
            (SERVICE_USER_HEADER, key.service_user_name.as_str()),
            (SERVICE_USER_ID_HEADER, key.service_user_id.as_str()),
            (KEY_ID_HEADER, key.key_id.as_str()),
            (TENANT_HEADER, key.tenant_slug.as_str()),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            HeaderValue::from_bytes(value.as_bytes())
                .ok()
                .map(|value| (name, value))
        })
        .collect();
        Self {
            audit: AuditIds::of(&key),
            key: Arc::new(key),
            headers,
        }
    }
}
