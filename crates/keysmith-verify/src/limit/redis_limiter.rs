//! The Redis-backed limiter: one budget for every instance sharing a Redis.
//!
//! Each decision is one Lua script (`check.lua`, sent with EVALSHA and
//! loaded on `NOSCRIPT`) that checks the key's rate, the tool override's
//! rate and the quota together and counts only an admitted call. Keys are
//! `{prefix}:{key_id}:…` (one cluster slot per API key) and expire once
//! they no longer matter. The rates are judged on Redis's clock (`TIME` in
//! the scripts), one clock for every instance; the quota window (a calendar
//! day or month) is named by the layer's clock, so instances should still
//! keep theirs in step (NTP) around midnight.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use time::OffsetDateTime;

use super::{
    Exceeded, LimitFuture, LimitKind, Limiter, LimiterError, PeekFuture, QuotaWindow, Remaining,
    math::retry_after_secs, memory::period_name,
};
use crate::outcome::VerifiedKey;

const MINUTE_US: i64 = 60_000_000;

/// Limits shared through Redis. Cheap to share behind an `Arc`.
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: Script,
    peek_script: Script,
    prefix: String,
    timeout: Duration,
    rate_fail_open: bool,
    quota_fail_open: bool,
    /// Calls let through because Redis could not be asked.
    passed_unchecked: AtomicU64,
    /// Calls refused (503) because Redis could not be asked.
    refused_unchecked: AtomicU64,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: not shown.
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("rate_fail_open", &self.rate_fail_open)
            .field("quota_fail_open", &self.quota_fail_open)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`RedisLimiter`].
#[derive(Debug, Clone)]
pub struct RedisLimiterBuilder {
    prefix: String,
    timeout: Duration,
    rate_fail_open: bool,
    quota_fail_open: bool,
}

impl RedisLimiter {
    /// Defaults: prefix `keysmith:limits`, 250 ms per decision, rate limits
    /// fail open and quotas fail closed when Redis cannot be reached.
    pub fn builder() -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            prefix: "keysmith:limits".to_owned(),
            timeout: Duration::from_millis(250),
            rate_fail_open: true,
            quota_fail_open: false,
        }
    }

    /// Calls let through unchecked while Redis was unreachable.
    pub fn passed_unchecked(&self) -> u64 {
        self.passed_unchecked.load(Ordering::Relaxed)
    }

    /// Calls refused (503) while Redis was unreachable.
    pub fn refused_unchecked(&self) -> u64 {
        self.refused_unchecked.load(Ordering::Relaxed)
    }

    async fn decide(
        &self,
        key: &VerifiedKey,
        tool: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Result<(), Exceeded>, LimiterError> {
        let limits = &key.limits;
        let key_rate = limits.rate_limit.as_ref().and_then(|r| r.per_minute);
        let tool_rate = tool.and_then(|tool| limits.tool_rate(tool));
        let window = limits.quota.map(|q| QuotaWindow::containing(q.per, now));
        let mut invocation = self.script.prepare_invoke();
        self.bind(&mut invocation, key, tool, now);
        invocation.arg(window.map_or(0, |w| w.retry_after_secs(now)));
        let mut connection = self.connection.clone();
        let answer: Result<(u8, i64), String> = match tokio::time::timeout(
            self.timeout,
            invocation.invoke_async(&mut connection),
        )
        .await
        {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        let (verdict, wait_us) = match answer {
            Ok(answer) => answer,
            Err(err) => return self.unreachable(key, err),
        };
        let wait = retry_after_secs(i128::from(wait_us) * 1000);
        Ok(match verdict {
            1 => Err(Exceeded {
                kind: LimitKind::Rate,
                retry_after_secs: wait,
                message: format!(
                    "rate limit {}/min for this key exceeded",
                    key_rate.unwrap_or_default()
                ),
            }),
            2 => Err(Exceeded {
                kind: LimitKind::Rate,
                retry_after_secs: wait,
                message: tool_rate.map_or_else(String::new, |t| {
                    format!(
                        "rate limit {}/min for tools matching {} exceeded",
                        t.per_minute, t.tool
                    )
                }),
            }),
            3 => Err(match (limits.quota, window) {
                (Some(quota), Some(window)) => Exceeded {
                    kind: LimitKind::Quota,
                    retry_after_secs: window.retry_after_secs(now),
                    message: format!(
                        "quota of {} calls per {} exhausted",
                        quota.calls,
                        period_name(quota.per)
                    ),
                },
                _ => return Err(LimiterError("unexpected limiter answer".into())),
            }),
            _ => Ok(()),
        })
    }

    /// The Redis keys and arguments both scripts share: the key's rate, the
    /// matching override's rate and the quota window's counter.
    fn bind(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        key: &VerifiedKey,
        tool: Option<&str>,
        now: OffsetDateTime,
    ) {
        let limits = &key.limits;
        let tool_rate = tool.and_then(|tool| limits.tool_rate(tool));
        let window = limits.quota.map(|q| QuotaWindow::containing(q.per, now));
        let base = format!("{}:{{{}}}", self.prefix, key.key_id);
        let interval = |per_minute: Option<u32>| {
            per_minute.map_or(0, |p| MINUTE_US / i64::from(p.max(1)).max(1))
        };
        invocation
            .key(format!("{base}:rate"))
            .key(format!(
                "{base}:tool:{}",
                tool_rate.map_or("", |t| t.tool.as_str())
            ))
            .key(format!(
                "{base}:quota:{}",
                window.map(|w| w.label()).unwrap_or_default()
            ))
            .arg(interval(
                limits.rate_limit.as_ref().and_then(|r| r.per_minute),
            ))
            .arg(interval(tool_rate.map(|t| t.per_minute)))
            .arg(limits.quota.map_or(0, |q| q.calls));
    }

    /// What is left, read in one script that writes nothing.
    async fn remaining(
        &self,
        key: &VerifiedKey,
        tool: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Remaining>, LimiterError> {
        if key.limits.is_unlimited() {
            return Ok(Some(Remaining::default()));
        }
        let mut invocation = self.peek_script.prepare_invoke();
        self.bind(&mut invocation, key, Some(tool), now);
        let mut connection = self.connection.clone();
        let (rate, tool_rate, quota): (i64, i64, i64) =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| LimiterError(format!("no answer within {:?}", self.timeout)))?
                .map_err(|e| LimiterError(e.to_string()))?;
        let left = |n: i64| u64::try_from(n).ok();
        Ok(Some(Remaining {
            per_minute: left(rate),
            tool_per_minute: left(tool_rate),
            quota: left(quota),
        }))
    }

    /// Redis could not decide: pass or refuse per the settings of the
    /// limits the key has (a quota that fails closed wins).
    fn unreachable(
        &self,
        key: &VerifiedKey,
        err: String,
    ) -> Result<Result<(), Exceeded>, LimiterError> {
        let limits = &key.limits;
        let closed = (limits.quota.is_some() && !self.quota_fail_open)
            || (limits.rate_limit.is_some() && !self.rate_fail_open);
        tracing::warn!(error = %err, key_id = %key.key_id, refused = closed, "redis limiter unreachable");
        if closed {
            self.refused_unchecked.fetch_add(1, Ordering::Relaxed);
            Err(LimiterError(err))
        } else {
            self.passed_unchecked.fetch_add(1, Ordering::Relaxed);
            Ok(Ok(()))
        }
    }
}

impl RedisLimiterBuilder {
    /// Namespace of every Redis key written (default `keysmith:limits`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Longest wait for one decision before Redis counts as unreachable (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With Redis unreachable, let calls of keys with a rate limit through
    /// (default `true`: a rate limit protects capacity, losing it briefly is
    /// better than an outage).
    pub fn rate_fail_open(mut self, open: bool) -> Self {
        self.rate_fail_open = open;
        self
    }

    /// With Redis unreachable, let calls of keys with a quota through
    /// (default `false`: a quota is a budget someone pays for; such calls are `503`).
    pub fn quota_fail_open(mut self, open: bool) -> Self {
        self.quota_fail_open = open;
        self
    }

    /// A limiter for `url` (`redis://[:password@]host:port/db`). Connects
    /// lazily: an unreachable Redis fails calls per the settings, not startup.
    pub fn connect(self, url: &str) -> Result<RedisLimiter, LimiterError> {
        let client =
            redis::Client::open(url).map_err(|e| LimiterError(format!("bad redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimiterError(format!("redis: {e}")))?;
        Ok(RedisLimiter {
            connection,
            script: Script::new(include_str!("check.lua")),
            peek_script: Script::new(include_str!("peek.lua")),
            prefix: self.prefix,
            timeout: self.timeout,
            rate_fail_open: self.rate_fail_open,
            quota_fail_open: self.quota_fail_open,
            passed_unchecked: AtomicU64::new(0),
            refused_unchecked: AtomicU64::new(0),
        })
    }
}

impl Limiter for RedisLimiter {
    fn check<'a>(
        &'a self,
        key: &'a VerifiedKey,
        tool: Option<&'a str>,
        now: OffsetDateTime,
    ) -> LimitFuture<'a> {
        Box::pin(self.decide(key, tool, now))
    }

    fn peek<'a>(
        &'a self,
        key: &'a VerifiedKey,
        tool: &'a str,
        now: OffsetDateTime,
    ) -> PeekFuture<'a> {
        Box::pin(self.remaining(key, tool, now))
    }
}
