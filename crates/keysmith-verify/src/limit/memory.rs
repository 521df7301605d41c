//! The in-memory limiter: exact within one process, blind to the others.

use std::{collections::HashMap, sync::Mutex};

use time::OffsetDateTime;

use super::{
    Exceeded, LimitFuture, LimitKind, Limiter, QuotaWindow,
    math::{Gcra, retry_after_secs, unix_ns},
};
use crate::outcome::VerifiedKey;

/// Entries kept before idle ones are swept.
const SWEEP_AT: usize = 100_000;

/// Counts in this process only (see the module docs). One lock makes each
/// decision atomic: the rates and the quota are checked together and
/// counted together, so a refused call costs nothing.
#[derive(Debug, Default)]
pub struct InMemoryLimiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// TAT per key (`key_id`) and per key and override (`key_id` + pattern).
    tats: HashMap<(String, Option<String>), i128>,
    /// Calls counted per key in its current window.
    quotas: HashMap<String, (QuotaWindow, u64)>,
}

impl InMemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The decision, synchronous: what [`Limiter::check`] answers.
    pub fn decide(
        &self,
        key: &VerifiedKey,
        tool: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), Exceeded> {
        let limits = &key.limits;
        let now_ns = unix_ns(now);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.tats.len() > SWEEP_AT {
            // A TAT in the past is the same as none.
            state.tats.retain(|_, tat| *tat > now_ns);
        }
        let mut updates = Vec::with_capacity(2);
        if let Some(per_minute) = limits.rate_limit.as_ref().and_then(|r| r.per_minute) {
            let slot = (key.key_id.clone(), None);
            match Gcra::per_minute(per_minute).admit(state.tats.get(&slot).copied(), now_ns) {
                Ok(tat) => updates.push((slot, tat)),
                Err(wait) => {
                    return Err(Exceeded {
                        kind: LimitKind::Rate,
                        retry_after_secs: retry_after_secs(wait),
                        message: format!("rate limit {per_minute}/min for this key exceeded"),
                    });
                }
            }
        }
        if let Some(rate) = tool.and_then(|tool| limits.tool_rate(tool)) {
            let slot = (key.key_id.clone(), Some(rate.tool.as_str().to_owned()));
            match Gcra::per_minute(rate.per_minute).admit(state.tats.get(&slot).copied(), now_ns) {
                Ok(tat) => updates.push((slot, tat)),
                Err(wait) => {
                    return Err(Exceeded {
                        kind: LimitKind::Rate,
                        retry_after_secs: retry_after_secs(wait),
                        message: format!(
                            "rate limit {}/min for tools matching {} exceeded",
                            rate.per_minute, rate.tool
                        ),
                    });
                }
            }
        }
        if let Some(quota) = limits.quota {
            let window = QuotaWindow::containing(quota.per, now);
            let used = match state.quotas.get(&key.key_id) {
                Some((w, used)) if *w == window => *used,
                _ => 0,
            };
            if used >= quota.calls {
                return Err(Exceeded {
                    kind: LimitKind::Quota,
                    retry_after_secs: window.retry_after_secs(now),
                    message: format!(
                        "quota of {} calls per {} exhausted",
                        quota.calls,
                        period_name(quota.per)
                    ),
                });
            }
            state.quotas.insert(key.key_id.clone(), (window, used + 1));
        }
        for (slot, tat) in updates {
            state.tats.insert(slot, tat);
        }
        Ok(())
    }
}

pub(crate) fn period_name(period: super::QuotaPeriod) -> &'static str {
    match period {
        super::QuotaPeriod::Day => "day",
        super::QuotaPeriod::Month => "month",
    }
}

impl Limiter for InMemoryLimiter {
    fn check<'a>(
        &'a self,
        key: &'a VerifiedKey,
        tool: Option<&'a str>,
        now: OffsetDateTime,
    ) -> LimitFuture<'a> {
        let decision = self.decide(key, tool, now);
        Box::pin(std::future::ready(Ok(decision)))
    }
}

#[cfg(test)]
mod tests {
    use time::{Duration, macros::datetime};

    use super::*;
    use crate::limit::{KeyLimits, Quota, QuotaPeriod, RateLimit, ToolRate};
    use crate::{allowlist::Capabilities, tools::ToolPattern};

    fn key(limits: KeyLimits) -> VerifiedKey {
        VerifiedKey {
            key_id: "k1".into(),
            tenant_id: "t".into(),
            tenant_slug: "t".into(),
            service_user_id: "s".into(),
            service_user_name: "s".into(),
            valid_until: datetime!(2030-01-01 00:00 UTC),
            scopes: vec![],
            allowed: Capabilities::everything(),
            limits,
            token: None,
        }
    }

    #[test]
    fn tool_override_limits_only_matching_tools() {
        let limiter = InMemoryLimiter::new();
        let key = key(KeyLimits {
            rate_limit: Some(RateLimit {
                per_minute: Some(100),
                tools: vec![ToolRate {
                    tool: ToolPattern::parse("search*").expect("pattern"),
                    per_minute: 2,
                }],
            }),
            quota: None,
        });
        let now = datetime!(2026-11-23 12:00 UTC);
        assert!(limiter.decide(&key, Some("search_a"), now).is_ok());
        assert!(limiter.decide(&key, Some("search_b"), now).is_ok());
        let refused = limiter
            .decide(&key, Some("search_a"), now)
            .expect_err("third search");
        assert_eq!(
            refused.message,
            "rate limit 2/min for tools matching search* exceeded"
        );
        assert_eq!(refused.retry_after_secs, 30);
        for _ in 0..10 {
            assert!(limiter.decide(&key, Some("fetch"), now).is_ok());
        }
    }

    #[test]
    fn quota_counts_allowed_calls_and_resets_with_the_day() {
        let limiter = InMemoryLimiter::new();
        let key = key(KeyLimits {
            rate_limit: Some(RateLimit {
                per_minute: Some(2),
                tools: vec![],
            }),
            quota: Some(Quota {
                calls: 3,
                per: QuotaPeriod::Day,
            }),
        });
        let mut now = datetime!(2026-11-23 23:58 UTC);
        assert!(limiter.decide(&key, Some("t"), now).is_ok());
        assert!(limiter.decide(&key, Some("t"), now).is_ok());
        // Refused by the rate: the quota is not spent.
        assert_eq!(
            limiter.decide(&key, Some("t"), now).map_err(|e| e.kind),
            Err(LimitKind::Rate)
        );
        now += Duration::seconds(30);
        assert!(limiter.decide(&key, Some("t"), now).is_ok());
        now += Duration::seconds(30);
        let refused = limiter
            .decide(&key, Some("t"), now)
            .expect_err("quota spent");
        assert_eq!(refused.kind, LimitKind::Quota);
        assert_eq!(refused.message, "quota of 3 calls per day exhausted");
        assert_eq!(refused.retry_after_secs, 60);
        // Refused by the quota: the rate is not spent either.
        now += Duration::seconds(60);
        assert!(limiter.decide(&key, Some("t"), now).is_ok());
    }

    #[test]
    fn a_request_without_a_tool_counts_against_the_key_not_the_overrides() {
        let limiter = InMemoryLimiter::new();
        let key = key(KeyLimits {
            rate_limit: Some(RateLimit {
                per_minute: Some(3),
                tools: vec![ToolRate {
                    tool: ToolPattern::parse("*").expect("pattern"),
                    per_minute: 1,
                }],
            }),
            quota: None,
        });
        let now = datetime!(2026-11-23 12:00 UTC);
        for _ in 0..3 {
            assert!(
                limiter.decide(&key, None, now).is_ok(),
                "no override applies"
            );
        }
        let refused = limiter.decide(&key, None, now).expect_err("fourth request");
        assert_eq!(refused.message, "rate limit 3/min for this key exceeded");
    }
}
