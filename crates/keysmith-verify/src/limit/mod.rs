//! Per-key limits, enforced by the layer on every allowed `tools/call`
//! (on every allowed request behind a layer that is not MCP): a GCRA rate
//! per key and per (key, tool override), and a fixed-window quota per key
//! and UTC day or month.
//!
//! The default [`InMemoryLimiter`] counts **per instance**: two processes
//! behind a load balancer each allow the full budget. Only calls the layer
//! lets through count; calls refused for any reason (unknown key, tool not
//! allowed, over a limit) do not.
//!
//! [`Limiter::peek`] reads what is left without counting; only a shared
//! limiter ([`RedisLimiter`]) answers it, since an in-memory count is one
//! instance's view.

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

/// What is left of a key's budget, as seen by every instance sharing the
/// limiter's store; `None` where the key has no such limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Remaining {
    /// Calls the key's rate admits right now (the burst left).
    pub per_minute: Option<u64>,
    /// Calls the override matching the tool admits right now.
    pub tool_per_minute: Option<u64>,
    /// Calls left in the quota's current window.
    pub quota: Option<u64>,
}

pub type PeekFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Remaining>, LimiterError>> + Send + 'a>>;

pub type LimitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Result<(), Exceeded>, LimiterError>> + Send + 'a>>;

/// Decides whether one more call of `tool` by `key` fits its limits, and
/// counts it when it does (and only then: a refused call costs nothing).
/// `tool` is `None` for a request that calls no tool (a layer that is not
/// MCP counts every request): the key-wide rate and the quota count it, no
/// per-tool override applies.
pub trait Limiter: Send + Sync + fmt::Debug + 'static {
    fn check<'a>(
        &'a self,
        key: &'a VerifiedKey,
        tool: Option<&'a str>,
        now: OffsetDateTime,
    ) -> LimitFuture<'a>;

    /// What is left of `key`'s budget for `tool`, counting nothing.
    /// `Ok(None)`: this limiter cannot tell for the whole fleet — an
    /// in-memory limiter counts per layer instance, so by default it says nothing.
    fn peek<'a>(
        &'a self,
        _key: &'a VerifiedKey,
        _tool: &'a str,
        _now: OffsetDateTime,
    ) -> PeekFuture<'a> {
        Box::pin(std::future::ready(Ok(None)))
    }
}
