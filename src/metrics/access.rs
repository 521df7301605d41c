//! Who may read `/metrics`: the rules `keysmith serve` and `keysmith
//! gateway` share (`KEYSMITH_METRICS_TOKEN`, `KEYSMITH_METRICS_BIND`).

use std::net::IpAddr;

use http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use crate::config::Config;

/// Who can read `/metrics`, said at start so the operator knows.
pub fn metrics_exposure(config: &Config) -> &'static str {
    match (&config.metrics_bind, &config.metrics_token) {
        (Some(_), Some(_)) => "on KEYSMITH_METRICS_BIND only, with the token",
        (Some(_), None) => "on KEYSMITH_METRICS_BIND only, to whoever reaches it",
        (None, Some(_)) => "beside the API, with the token of KEYSMITH_METRICS_TOKEN",
        (None, None) => {
            "beside the API, to clients on this host only (set KEYSMITH_METRICS_TOKEN or KEYSMITH_METRICS_BIND to scrape from elsewhere)"
        }
    }
}

/// Who may read `/metrics` served beside other routes (the API, the
/// gateway's proxy). With `KEYSMITH_METRICS_TOKEN` set, its holder. Without
/// it, only a client on this host talking to us directly: a loopback peer
/// with no forwarding header (behind a reverse proxy on the same host every
/// request comes from loopback, so a forwarded one needs the token). The
/// metrics name tenants by id and count their traffic.
pub fn metrics_allowed(config: &Config, headers: &HeaderMap, peer: Option<IpAddr>) -> bool {
    if config.metrics_token.is_some() {
        return token_allows(config, headers);
    }
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    peer.is_some_and(|ip| ip.to_canonical().is_loopback()) && !forwarded
}

/// No token configured: open. Otherwise `Authorization: Bearer <token>`,
/// compared in constant time.
pub fn token_allows(config: &Config, headers: &HeaderMap) -> bool {
    let Some(token) = &config.metrics_token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, presented)| {
            presented
                .trim()
                .as_bytes()
                .ct_eq(token.expose().as_bytes())
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: Option<&str>) -> Config {
        Config::from_lookup(|name| match (name, token) {
            ("KEYSMITH_METRICS_TOKEN", Some(token)) => Some(token.to_owned()),
            _ => None,
        })
        .expect("config")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("value"));
        }
        map
    }

    #[test]
    fn without_a_token_only_direct_local_clients_read_metrics() {
        let open = config(None);
        let ip = |text: &str| Some(text.parse::<IpAddr>().expect("ip"));
        assert!(metrics_allowed(&open, &headers(&[]), ip("127.0.0.1")));
        assert!(metrics_allowed(&open, &headers(&[]), ip("::1")));
        assert!(metrics_allowed(
            &open,
            &headers(&[]),
            ip("::ffff:127.0.0.1")
        ));
        for remote in ["10.0.0.5", "192.0.2.7", "2001:db8::1"] {
            assert!(
                !metrics_allowed(&open, &headers(&[]), ip(remote)),
                "{remote}"
            );
        }
        assert!(
            !metrics_allowed(&open, &headers(&[]), None),
            "no peer known"
        );
        for forwarded in ["forwarded", "x-forwarded-for", "x-real-ip"] {
            let proxied = headers(&[(forwarded, "203.0.113.9")]);
            assert!(
                !metrics_allowed(&open, &proxied, ip("127.0.0.1")),
                "{forwarded}"
            );
        }
    }

    #[test]
    fn with_a_token_only_its_holder_reads_metrics_from_anywhere() {
        let guarded = config(Some("scrape-secret-123"));
        let ip = |text: &str| Some(text.parse::<IpAddr>().expect("ip"));
        let bearer = headers(&[("authorization", "Bearer scrape-secret-123")]);
        assert!(metrics_allowed(&guarded, &bearer, ip("10.0.0.5")));
        assert!(!metrics_allowed(&guarded, &headers(&[]), ip("127.0.0.1")));
        let wrong = headers(&[("authorization", "Bearer scrape-secret-12")]);
        assert!(!metrics_allowed(&guarded, &wrong, ip("127.0.0.1")));
    }
}
