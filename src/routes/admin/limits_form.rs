//! A key's rate limit and quota as typed in a form: the key create form and
//! the limits edit on the key page share these fields.

use serde::Deserialize;

use crate::{domain::keys, error::AppError};
use keysmith_verify::{
    KeyLimits,
    limit::{Quota, QuotaPeriod, RateLimit, ToolRate},
    tools::ToolPattern,
};

/// What was typed; every field empty means no limits.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LimitsForm {
    /// Tool calls a minute for the key.
    #[serde(default)]
    pub rate_per_minute: String,
    /// One override a line: `search* = 60`.
    #[serde(default)]
    pub tool_rates: String,
    /// Calls per `quota_per`.
    #[serde(default)]
    pub quota_calls: String,
    /// `day` or `month`.
    #[serde(default)]
    pub quota_per: String,
}

fn positive<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T, AppError> {
    raw.trim()
        .parse()
        .map_err(|_| AppError::validation(format!("{field} must be a positive whole number")))
}

impl LimitsForm {
    /// The form showing `limits` as they are.
    pub fn of(limits: &KeyLimits) -> Self {
        let rate = limits.rate_limit.as_ref();
        Self {
            rate_per_minute: rate
                .and_then(|r| r.per_minute)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            tool_rates: rate.map_or_else(String::new, |r| {
                r.tools
                    .iter()
                    .map(|t| format!("{} = {}", t.tool, t.per_minute))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            quota_calls: limits
                .quota
                .map(|q| q.calls.to_string())
                .unwrap_or_default(),
            quota_per: limits
                .quota
                .map_or("day", |q| match q.per {
                    QuotaPeriod::Day => "day",
                    QuotaPeriod::Month => "month",
                })
                .to_owned(),
        }
    }

    /// The limits, checked as the JSON API checks them.
    pub fn parse(&self) -> Result<KeyLimits, AppError> {
        let per_minute = match self.rate_per_minute.trim() {
            "" => None,
            raw => Some(positive("the rate per minute", raw)?),
        };
        let tools = self
            .tool_rates
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let (pattern, rate) = line.split_once('=').ok_or_else(|| {
                    AppError::validation(format!(
                        "a tool override looks like `search* = 60`, not `{line}`"
                    ))
                })?;
                Ok(ToolRate {
                    tool: ToolPattern::parse(pattern.trim())
                        .map_err(|e| AppError::validation(format!("tool override: {e}")))?,
                    per_minute: positive("a tool override's rate", rate)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let rate_limit =
            (per_minute.is_some() || !tools.is_empty()).then_some(RateLimit { per_minute, tools });
        let quota = match self.quota_calls.trim() {
            "" => None,
            raw => Some(Quota {
                calls: positive("the quota", raw)?,
                per: match self.quota_per.trim() {
                    "day" | "" => QuotaPeriod::Day,
                    "month" => QuotaPeriod::Month,
                    _ => return Err(AppError::validation("a quota is per day or per month")),
                },
            }),
        };
        keys::limits(rate_limit, quota)
            .map_err(|err| AppError::validation(in_form_words(&err.to_string())))
    }
}

/// The API's names in a limits refusal, as the form's labels say them (the
/// key form, the key page's limits edit and the policy page share these).
const LABELS: [(&str, &str); 4] = [
    ("limits: ", ""),
    ("rate_limit.tools[].per_minute", "a per-tool rate"),
    ("rate_limit.per_minute", "“Tool calls per minute”"),
    ("quota.calls", "“Quota: calls”"),
];

fn in_form_words(message: &str) -> String {
    LABELS
        .iter()
        .fold(message.to_owned(), |m, (api, label)| m.replace(api, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(rate: &str, tools: &str, calls: &str, per: &str) -> LimitsForm {
        LimitsForm {
            rate_per_minute: rate.into(),
            tool_rates: tools.into(),
            quota_calls: calls.into(),
            quota_per: per.into(),
        }
    }

    #[test]
    fn typed_limits_round_trip_and_bad_ones_are_named() {
        let limits = form(" 600", "search* = 60\n\nfetch=5", "10000", "month")
            .parse()
            .expect("valid");
        assert_eq!(LimitsForm::of(&limits).parse().expect("again"), limits);
        assert!(
            form("", "", "", "day")
                .parse()
                .expect("none")
                .is_unlimited()
        );
        for (bad, says) in [
            (
                form("0", "", "", ""),
                "“Tool calls per minute” must be a positive number",
            ),
            (form("fast", "", "", ""), "rate per minute"),
            (form("", "search*", "", ""), "looks like"),
            (form("", "bad tool = 3", "", ""), "tool override"),
            (form("", "", "-1", "day"), "quota"),
            (form("", "", "5", "week"), "per day or per month"),
        ] {
            let err = bad.parse().expect_err("refused").to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
