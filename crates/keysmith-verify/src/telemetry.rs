//! What the layer reports, through the `metrics` facade: nothing is recorded
//! unless the application installs a recorder (the Keysmith server and
//! gateway install a Prometheus one), and then at the cost of an atomic add.
//!
//! - `keysmith_layer_requests_total{outcome}`: every request the layer
//!   answered or passed on, by outcome: `valid`, or the refusal's code
//!   (the audit reason of a genuine key's refusal; `missing_key`,
//!   `not_found`, `other_tenant`, `unavailable` for requests without one,
//!   which no audit row records);
//! - `keysmith_layer_verify_seconds`: time to a verdict (cache included);
//! - `keysmith_audit_queue_depth`: events waiting for the audit writer;
//! - `keysmith_audit_events_lost_total`: events that could not be written
//!   (after shutdown, or the database gone for a minute; for the remote
//!   writer, every event dropped): should stay 0;
//! - the remote writer (a gateway delivering its audit to a Keysmith server):
//!   `keysmith_audit_spool_depth` (events waiting for the server),
//!   `keysmith_audit_delivered_total`, `keysmith_audit_delivery_retries_total`
//!   (failed deliveries, each tried again later) and
//!   `keysmith_audit_dropped_total{reason}` (`spool_full`: the oldest went to
//!   make room; `refused`: the server refused the batch as invalid;
//!   `shutdown`: still undelivered when the flush at shutdown gave up).

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram};

use crate::outcome::VerifyCode;

pub const REQUESTS: &str = "keysmith_layer_requests_total";
pub const VERIFY_SECONDS: &str = "keysmith_layer_verify_seconds";
pub const AUDIT_QUEUE_DEPTH: &str = "keysmith_audit_queue_depth";
pub const AUDIT_LOST: &str = "keysmith_audit_events_lost_total";
pub const AUDIT_SPOOL_DEPTH: &str = "keysmith_audit_spool_depth";
pub const AUDIT_DELIVERED: &str = "keysmith_audit_delivered_total";
pub const AUDIT_DELIVERY_RETRIES: &str = "keysmith_audit_delivery_retries_total";
pub const AUDIT_DROPPED: &str = "keysmith_audit_dropped_total";
pub const DROPPED_SPOOL_FULL: &str = "spool_full";
pub const DROPPED_REFUSED: &str = "refused";
pub const DROPPED_SHUTDOWN: &str = "shutdown";

pub(crate) fn request(outcome: &'static str) {
    metrics::counter!(REQUESTS, "outcome" => outcome).increment(1);
}

/// What a layer records on every request, through handles taken from the
/// recorder at its first request rather than looked up by name and labels
/// on each call (under the gateway's Prometheus recorder the lookups were
/// about 2,000 instructions per request, counted with callgrind). An
/// application installs its recorder before it serves, so the first request
/// finds it; a recorder installed later is not seen by a layer that has
/// already served.
#[derive(Debug, Default)]
pub(crate) struct LayerMetrics(OnceLock<LayerHandles>);

#[derive(Debug)]
struct LayerHandles {
    valid: Counter,
    verify_seconds: Histogram,
}

impl LayerMetrics {
    fn handles(&self) -> &LayerHandles {
        self.0.get_or_init(|| LayerHandles {
            valid: metrics::counter!(REQUESTS, "outcome" => VerifyCode::Valid.as_str()),
            verify_seconds: metrics::histogram!(VERIFY_SECONDS),
        })
    }

    /// A request passed on to the service (`outcome="valid"`).
    pub(crate) fn valid(&self) {
        self.handles().valid.increment(1);
    }

    pub(crate) fn verify_time(&self, elapsed: Duration) {
        self.handles().verify_seconds.record(elapsed.as_secs_f64());
    }
}

/// The audit queue's depth gauge, taken at the first record (as above);
/// shared by the clones of one sink.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDepth(Arc<OnceLock<Gauge>>);

impl QueueDepth {
    pub(crate) fn set(&self, depth: usize) {
        self.0
            .get_or_init(|| metrics::gauge!(AUDIT_QUEUE_DEPTH))
            .set(depth as f64);
    }
}

pub(crate) fn audit_lost(events: u64) {
    metrics::counter!(AUDIT_LOST).increment(events);
}

#[cfg(feature = "remote")]
pub(crate) fn audit_spool_depth(depth: usize) {
    metrics::gauge!(AUDIT_SPOOL_DEPTH).set(depth as f64);
}

#[cfg(feature = "remote")]
pub(crate) fn audit_delivered(events: u64) {
    metrics::counter!(AUDIT_DELIVERED).increment(events);
}

#[cfg(feature = "remote")]
pub(crate) fn audit_delivery_retry() {
    metrics::counter!(AUDIT_DELIVERY_RETRIES).increment(1);
}

/// Events the remote writer gave up on, by why; also counted as lost.
#[cfg(feature = "remote")]
pub(crate) fn audit_dropped(reason: &'static str, events: u64) {
    metrics::counter!(AUDIT_DROPPED, "reason" => reason).increment(events);
    audit_lost(events);
}
