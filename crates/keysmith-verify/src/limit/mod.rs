//! Per-key limits, enforced by the layer on every allowed `tools/call`:
//! a GCRA rate per key and per (key, tool override), and a fixed-window
//! quota per key and UTC day or month.
//!
//! The default [`InMemoryLimiter`] counts **per instance**: two processes
//! behind a load balancer each allow the full budget. Only calls the layer
//! lets through count; calls refused for any reason (unknown key, tool not
//! allowed, over a limit) do not.

mod config;
mod math;
mod memory;
#[cfg(feature = "redis")]
mod redis_limiter;

use std::{fmt, future::Future, pin::Pin};

use time::OffsetDateTime;

pub use config::{
    InvalidLimits, KeyLimits, MAX_TOOL_OVERRIDES, Quota, QuotaPeriod, RateLimit, ToolRate,
};
pub use math::{Gcra, QuotaWindow};
pub use memory::InMemoryLimiter;
#[cfg(feature = "redis")]
pub use redis_limiter::{RedisLimiter, RedisLimiterBuilder};

use crate::outcome::VerifiedKey;

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Rate,
    Quota,
}

/// A refused call: what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub kind: LimitKind,
    /// Whole seconds until a retry can succeed (at least 1).
    pub retry_after_secs: u64,
    /// Names the limit, e.g. `rate limit 60/min for tools matching search* exceeded`.
    pub message: String,
}

/// The limiter could not decide (its store is unreachable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("limiter unavailable: {0}")]
pub struct LimiterError(pub String);

pub type LimitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Result<(), Exceeded>, LimiterError>> + Send + 'a>>;

/// Decides whether one more call of `tool` by `key` fits its limits, and
/// counts it when it does (and only then: a refused call costs nothing).
pub trait Limiter: Send + Sync + fmt::Debug + 'static {
    fn check<'a>(
        &'a self,
        key: &'a VerifiedKey,
        tool: &'a str,
        now: OffsetDateTime,
    ) -> LimitFuture<'a>;
}
