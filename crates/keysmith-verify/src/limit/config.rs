//! A key's limits as stored with it: a call rate (with per-tool overrides)
//! and a quota of calls per UTC day or month.

use serde::{Deserialize, Serialize};

use crate::tools::ToolPattern;

/// Most per-tool overrides one key may carry.
pub const MAX_TOOL_OVERRIDES: usize = 20;

/// The limits of one key; both parts optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// Tool calls per minute for the key, and tighter rates for some tools. The
/// key-wide rate counts every call; an override counts, in addition, the
/// calls of the tools it matches (the first matching override applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolRate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRate {
    pub tool: ToolPattern,
    pub per_minute: u32,
}

/// At most `calls` tool calls per calendar `per` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub calls: u64,
    pub per: QuotaPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Day,
    Month,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLimits {
    #[error("{0} must be a positive number")]
    NotPositive(&'static str),
    #[error("at most {MAX_TOOL_OVERRIDES} tool overrides")]
    TooManyOverrides,
    #[error("rate_limit needs per_minute or at least one tool override")]
    EmptyRateLimit,
}

impl KeyLimits {
    /// Limits checked the way a client must give them: positive numbers, at
    /// most [`MAX_TOOL_OVERRIDES`] overrides (tool patterns parse on deserialize).
    pub fn new(rate_limit: Option<RateLimit>, quota: Option<Quota>) -> Result<Self, InvalidLimits> {
        if let Some(rate) = &rate_limit {
            if rate.per_minute == Some(0) {
                return Err(InvalidLimits::NotPositive("rate_limit.per_minute"));
            }
            if rate.per_minute.is_none() && rate.tools.is_empty() {
                return Err(InvalidLimits::EmptyRateLimit);
            }
            if rate.tools.len() > MAX_TOOL_OVERRIDES {
                return Err(InvalidLimits::TooManyOverrides);
            }
            if rate.tools.iter().any(|t| t.per_minute == 0) {
                return Err(InvalidLimits::NotPositive("rate_limit.tools[].per_minute"));
            }
        }
        if quota.is_some_and(|q| q.calls == 0) {
            return Err(InvalidLimits::NotPositive("quota.calls"));
        }
        Ok(Self { rate_limit, quota })
    }

    /// These limits, with each part left unset taken from `defaults`.
    #[must_use]
    pub fn or(self, defaults: Self) -> Self {
        Self {
            rate_limit: self.rate_limit.or(defaults.rate_limit),
            quota: self.quota.or(defaults.quota),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate_limit.is_none() && self.quota.is_none()
    }

    /// The stored form (`None`: no limits).
    pub fn to_storage(&self) -> Option<String> {
        (!self.is_unlimited()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// Reads the stored form. A value that no longer parses must not lift
    /// the limits it held: it reads as a quota of zero, so every tool call
    /// is refused (fail closed, like a corrupt allowlist) until it is fixed.
    pub fn from_storage(stored: Option<&str>) -> Self {
        stored.map_or_else(Self::default, |s| {
            serde_json::from_str(s).unwrap_or_else(|err| {
                tracing::error!(error = %err, "unreadable stored key limits; refusing every tool call");
                Self {
                    rate_limit: None,
                    quota: Some(Quota {
                        calls: 0,
                        per: QuotaPeriod::Day,
                    }),
                }
            })
        })
    }

    /// The override that applies to `tool`, if any.
    pub fn tool_rate(&self, tool: &str) -> Option<&ToolRate> {
        self.rate_limit
            .as_ref()?
            .tools
            .iter()
            .find(|t| t.tool.matches(tool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<KeyLimits, String> {
        let raw: KeyLimits = serde_json::from_str(json).map_err(|e| e.to_string())?;
        KeyLimits::new(raw.rate_limit, raw.quota).map_err(|e| e.to_string())
    }

    #[test]
    fn unreadable_stored_limits_fail_closed() {
        let limits = KeyLimits::from_storage(Some("not json"));
        assert!(!limits.is_unlimited());
        assert_eq!(limits.quota.map(|q| q.calls), Some(0));
    }

    #[test]
    fn round_trips_through_storage() {
        let limits = parse(
            r#"{"rate_limit":{"per_minute":600,"tools":[{"tool":"search*","per_minute":60}]},"quota":{"calls":10000,"per":"day"}}"#,
        )
        .expect("valid");
        let stored = limits.to_storage();
        assert_eq!(KeyLimits::from_storage(stored.as_deref()), limits);
        assert_eq!(KeyLimits::default().to_storage(), None);
        assert_eq!(
            limits.tool_rate("search_docs").map(|t| t.per_minute),
            Some(60)
        );
        assert!(limits.tool_rate("fetch").is_none());
    }

    #[test]
    fn refuses_zero_and_bad_patterns_and_too_many_overrides() {
        assert!(parse(r#"{"rate_limit":{"per_minute":0}}"#).is_err());
        assert!(parse(r#"{"rate_limit":{"per_minute":-1}}"#).is_err());
        assert!(parse(r#"{"rate_limit":{}}"#).is_err());
        assert!(parse(r#"{"quota":{"calls":0,"per":"day"}}"#).is_err());
        assert!(parse(r#"{"quota":{"calls":5,"per":"week"}}"#).is_err());
        assert!(parse(r#"{"rate_limit":{"tools":[{"tool":"a b","per_minute":1}]}}"#).is_err());
        let many: Vec<String> = (0..21)
            .map(|i| format!(r#"{{"tool":"t{i}","per_minute":1}}"#))
            .collect();
        let json = format!(r#"{{"rate_limit":{{"tools":[{}]}}}}"#, many.join(","));
        assert!(parse(&json).is_err());
    }
}
