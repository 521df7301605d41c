//! How one variable's text becomes a value: bounded numbers, on/off flags,
//! connection limits, trusted proxies. Every error names the variable.

use std::{ops::RangeInclusive, str::FromStr, time::Duration};

use crate::connections::ConnectionLimits;

/// `name` as a number in `range`, or `default` when unset; otherwise the
/// error says "`name` must be `what`".
pub(super) fn bounded<T: FromStr + PartialOrd>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    range: RangeInclusive<T>,
    what: &str,
) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            _ => anyhow::bail!("{name} must be {what}"),
        },
    }
}

/// A number of seconds in `range`, or `default` seconds when unset.
pub(super) fn seconds(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    range: RangeInclusive<u64>,
    what: &str,
) -> anyhow::Result<Duration> {
    bounded(var, name, default, range, what).map(Duration::from_secs)
}

/// An on/off variable: on for `1`, `true` or `yes`, off otherwise.
pub(super) fn flag(var: &impl Fn(&str) -> Option<String>, name: &str) -> bool {
    matches!(var(name).as_deref(), Some("1" | "true" | "yes"))
}

/// Most seconds a connection timeout may be set to (a day): a larger
/// value is a typo, and would leave connections held as if there were none.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Most connections `KEYSMITH_MAX_CONNECTIONS` may allow.
const MAX_CONNECTIONS: usize = 1_000_000;

/// A per-tenant cap read from `name`: a whole number from 1 to `max`, or `default`.
pub(super) fn tenant_cap(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: i64,
    max: i64,
) -> anyhow::Result<i64> {
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(cap) if (1..=max).contains(&cap) => Ok(cap),
            _ => anyhow::bail!("{name} must be a whole number from 1 to {max}"),
        },
    }
}

pub(super) fn connection_limits(
    var: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<ConnectionLimits> {
    let defaults = ConnectionLimits::default();
    let timeout = |name: &str, default: Duration| {
        let what = format!("a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}");
        seconds(var, name, default.as_secs(), 1..=MAX_TIMEOUT_SECS, &what)
    };
    let max_connections = match var("KEYSMITH_MAX_CONNECTIONS") {
        None => None,
        Some(raw) => match raw.parse::<usize>() {
            Ok(cap) if (1..=MAX_CONNECTIONS).contains(&cap) => Some(cap),
            _ => anyhow::bail!(
                "KEYSMITH_MAX_CONNECTIONS must be a whole number from 1 to {MAX_CONNECTIONS}"
            ),
        },
    };
    Ok(ConnectionLimits {
        header_timeout: timeout("KEYSMITH_HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
        body_timeout: timeout("KEYSMITH_BODY_TIMEOUT_SECS", defaults.body_timeout)?,
        max_connections,
    })
}

/// Parses `KEYSMITH_TRUSTED_PROXIES`: CIDRs or single addresses, comma-separated.
pub fn parse_trusted(raw: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!("{item:?} is not a CIDR like 10.0.0.0/8 or an address")
                })
        })
        .collect()
}
