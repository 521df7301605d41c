//! The client's address for throttling. Behind a reverse proxy every request
//! comes from the proxy, so the proxy's forwarding header must decide; but a
//! client can write that header too, so it is believed only when the peer is
//! a trusted proxy (`KEYSMITH_TRUSTED_PROXIES`), and only up to the first
//! hop, from the right, that is not one.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The address the request really came from.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // `Forwarded` (RFC 7239) when present, else `X-Forwarded-For`; each hop
    // appends, so the rightmost entries are the ones our proxies wrote.
    let chain = forwarded_for(headers).unwrap_or_else(|| x_forwarded_for(headers));
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            // An entry we cannot read ("unknown", an obfuscated name): stop
            // at the last trusted hop rather than guess past it.
            None => break,
            Some(ip) => {
                client = *ip;
                if !is_trusted(ip) {
                    break;
                }
            }
        }
    }
    client
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    header_values(headers, "x-forwarded-for")
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let hops: Vec<Option<IpAddr>> = header_values(headers, "forwarded")
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
        })
        .collect();
    (!hops.is_empty()).then_some(hops)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.split(']').next())
                .and_then(|ip| ip.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_trusted;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = parse_trusted("10.0.0.0/8").expect("cidr");
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.5"), &h, &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &[]),
            ip("10.0.0.2"),
            "no proxies configured"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_up_to_the_first_untrusted_hop() {
        let trusted = parse_trusted("10.0.0.0/8, ::1").expect("cidrs");
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.3")]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
        let fwd = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::17]:4711\";proto=https",
        )]);
        assert_eq!(
            client_address(ip("::1"), &fwd, &trusted),
            ip("2001:db8::17")
        );
        let unknown = headers(&[("forwarded", "for=unknown, for=10.0.0.9")]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &unknown, &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn bad_cidrs_are_refused_with_the_item() {
        let err = parse_trusted("10.0.0.0/8, nope").expect_err("bad");
        assert!(err.to_string().contains("nope"));
    }
}
