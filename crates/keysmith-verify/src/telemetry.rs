//! What the layer reports, through the `metrics` facade: nothing is recorded
//! unless the application installs a recorder (the Keysmith server and
//! gateway install a Prometheus one), and then at the cost of an atomic add.
//!
//! - `keysmith_layer_requests_total{outcome}`: every request the layer
//!   answered or passed on, by outcome (`valid`, a refusal code,
//!   `bad_request`, `too_large`, `unavailable`);
//! - `keysmith_layer_verify_seconds`: time to a verdict (cache included);
//! - `keysmith_audit_queue_depth`: events waiting for the audit writer;
//! - `keysmith_audit_events_lost_total`: events that could not be written
//!   (after shutdown, or the database gone for a minute): should stay 0.

use std::time::Duration;

pub const REQUESTS: &str = "keysmith_layer_requests_total";
pub const VERIFY_SECONDS: &str = "keysmith_layer_verify_seconds";
pub const AUDIT_QUEUE_DEPTH: &str = "keysmith_audit_queue_depth";
pub const AUDIT_LOST: &str = "keysmith_audit_events_lost_total";

pub(crate) fn request(outcome: &'static str) {
    metrics::counter!(REQUESTS, "outcome" => outcome).increment(1);
}

pub(crate) fn verify_time(elapsed: Duration) {
    metrics::histogram!(VERIFY_SECONDS).record(elapsed.as_secs_f64());
}

pub(crate) fn audit_queue_depth(depth: usize) {
    metrics::gauge!(AUDIT_QUEUE_DEPTH).set(depth as f64);
}

pub(crate) fn audit_lost(events: u64) {
    metrics::counter!(AUDIT_LOST).increment(events);
}
