//! Checks an application makes on a request's head (the gateway's `Origin`
//! check), run inside the layer so a genuine key's refused attempt is in its
//! audit trail like any other refusal.
//!
//! The guard judges the head before the key is looked at, and its refusal
//! is the answer whatever the key: a request without a usable key gets the
//! guard's answer too, so the answer never tells a refused page whether the
//! key it sent is good. The key is looked at (one verification, cached like
//! any other) only to file the refusal under it.

use std::fmt;

use http::{StatusCode, request::Parts};

use super::{refused::Refused, shared::Shared};
use crate::outcome::VerifyCode;

/// A check on the request head; see [`super::VerifyLayerBuilder::guard`].
pub trait RequestGuard: fmt::Debug + Send + Sync + 'static {
    /// `Err` refuses the request, with what to answer and why.
    fn check(&self, head: &Parts) -> Result<(), GuardRefusal>;
}

/// A guard's refusal: the status and JSON body answered, and the code the
/// refusal is audited and counted by.
#[derive(Debug, Clone)]
pub struct GuardRefusal {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub code: VerifyCode,
}

/// The guard's refusal of `head`, if it refuses it (never without a guard).
pub(super) fn refusal(shared: &Shared, head: &Parts) -> Option<Refused> {
    let refusal = shared.guard.as_ref()?.check(head).err()?;
    Some(Refused::given(refusal.status, refusal.code, refusal.body))
}
