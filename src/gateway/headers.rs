//! What the gateway does to headers on the way through: hop-by-hop headers
//! and the ones a `Connection` header names are dropped both ways (RFC 9110
//! §7.6.1), and client-sent forwarding headers are replaced by the gateway's.
//!
//! This runs twice per request, so it looks only at the names present (a
//! handful) and removes just those, instead of one hashed `remove` per name
//! that might be there (some thirty per request, nearly all absent); the
//! client's address is formatted once per connection ([`ClientPeer`]).

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
/// A `match` on the name's text: a length switch and at most one compare per
/// name (`HeaderName::as_str` is a table lookup for the standard ones).
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Forwarding headers a client could forge; the gateway writes its own.
fn is_forwarding(name: &str) -> bool {
    matches!(
        name,
        "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-forwarded-port"
            | "x-forwarded-prefix"
            | "x-real-ip"
    )
}

/// The client end of a connection, as the forwarding headers carry it:
/// formatted when the connection is accepted, shared by its requests.
#[derive(Debug, Clone)]
pub struct ClientPeer {
    /// The peer's address, for decisions about it (who may read metrics).
    pub addr: std::net::IpAddr,
    /// The address alone, for `X-Forwarded-For`.
    ip: HeaderValue,
    /// `for="<ip>";proto=http`, the start of `Forwarded` (RFC 7239; an IPv6
    /// node in brackets, §6).
    forwarded: HeaderValue,
}

impl ClientPeer {
    pub fn new(peer: SocketAddr) -> Self {
        let ip = peer.ip().to_string();
        let forwarded = if peer.is_ipv6() {
            format!("for=\"[{ip}]\";proto=http")
        } else {
            format!("for=\"{ip}\";proto=http")
        };
        Self {
            addr: peer.ip(),
            ip: HeaderValue::try_from(ip).expect("an IP address is a header value"),
            forwarded: HeaderValue::try_from(forwarded)
                .expect("a quoted IP address is a header value"),
        }
    }
}

/// Removes hop-by-hop headers and the headers `Connection` names.
// Out of line: a part a profile names (scripts/bench-instructions), also
// in a build with link-time optimization.
#[inline(never)]
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut doomed = names_where(headers, |name| is_hop_by_hop(name.as_str()));
    if doomed.contains(&header::CONNECTION) {
        // `Connection` lists, case-insensitively and comma-separated, more
        // headers that belong to this connection only.
        let listed = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|list| list.split(','))
            .filter_map(|token| HeaderName::try_from(token.trim()).ok())
            .filter(|name| !is_hop_by_hop(name.as_str()));
        doomed.extend(listed);
    }
    for name in &doomed {
        headers.remove(name);
    }
}

/// The names present that `pick` picks: one pass over a request's few
/// names, so that only those need a hashed removal.
fn names_where(headers: &HeaderMap, pick: impl Fn(&HeaderName) -> bool) -> Vec<HeaderName> {
    headers.keys().filter(|name| pick(name)).cloned().collect()
}

/// Replaces whatever forwarding headers the client sent with the gateway's.
// Out of line, as `strip_hop_by_hop`.
#[inline(never)]
pub(super) fn set_forwarding(
    headers: &mut HeaderMap,
    peer: Option<&ClientPeer>,
    host: Option<HeaderValue>,
) {
    for name in &names_where(headers, |name| is_forwarding(name.as_str())) {
        headers.remove(name);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(peer) = peer {
        headers.insert(X_FORWARDED_FOR, peer.ip.clone());
    }
    let host = host.filter(|h| h.to_str().is_ok_and(is_host));
    let forwarded = match (&host, peer) {
        (None, Some(peer)) => Some(peer.forwarded.clone()),
        (None, None) => Some(HeaderValue::from_static("proto=http")),
        // `;host="<host>"` after the peer's part; `is_host` keeps the quotes closed.
        (Some(host), peer) => {
            let start = peer.map_or(&b"proto=http"[..], |peer| peer.forwarded.as_bytes());
            let mut value = Vec::with_capacity(start.len() + host.len() + 8);
            let parts: [&[u8]; 4] = [start, b";host=\"", host.as_bytes(), b"\""];
            for part in parts {
                value.extend_from_slice(part);
            }
            HeaderValue::try_from(value).ok()
        }
    };
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(forwarded) = forwarded {
        headers.insert(header::FORWARDED, forwarded);
    }
}

/// A Host value safe to repeat inside a quoted `Forwarded` parameter.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("X-Secret , keep-alive"),
        );
        headers.append(header::CONNECTION, HeaderValue::from_static("x-other"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-other", HeaderValue::from_static("2"));
        headers.append("x-other", HeaderValue::from_static("3"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.insert("x-secretive", HeaderValue::from_static("kept"));
        let untouched = {
            let mut kept = HeaderMap::new();
            kept.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            kept.insert("x-secretive", HeaderValue::from_static("kept"));
            kept
        };
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
        // Nothing to drop: nothing changes.
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
        // An upgrade alone, without `Connection`, is still dropped.
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
    }

    const HOP_BY_HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];

    const FORWARDING: [&str; 7] = [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-real-ip",
    ];

    #[test]
    fn every_hop_by_hop_header_is_dropped_with_all_its_values() {
        for name in HOP_BY_HOP {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static("a"));
            headers.append(name, HeaderValue::from_static("b"));
            strip_hop_by_hop(&mut headers);
            assert!(headers.is_empty(), "{name} was forwarded");
        }
        // Names are matched whole: near misses are ordinary headers.
        for name in ["t", "tes", "upgrades", "x-connection", "keep-alive-x"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static("a"));
            strip_hop_by_hop(&mut headers);
            assert_eq!(headers.len(), 1, "{name} was dropped");
        }
    }

    fn forwarded(peer: &str, host: &'static str) -> [Option<String>; 4] {
        let mut headers = HeaderMap::new();
        for name in FORWARDING {
            headers.insert(name, HeaderValue::from_static("spoofed"));
            headers.append(name, HeaderValue::from_static("spoofed again"));
        }
        headers.insert("x-forwarded", HeaderValue::from_static("kept"));
        let peer = peer.parse().ok().map(ClientPeer::new);
        set_forwarding(
            &mut headers,
            peer.as_ref(),
            Some(HeaderValue::from_static(host)),
        );
        for name in FORWARDING {
            assert!(
                headers.get_all(name).iter().count() <= 1,
                "{name} kept twice"
            );
        }
        assert_eq!(
            headers.get("x-forwarded-proto"),
            Some(&HeaderValue::from_static("http"))
        );
        // A near miss is an ordinary header, forwarded as sent.
        assert_eq!(
            headers.get("x-forwarded"),
            Some(&HeaderValue::from_static("kept"))
        );
        [
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-real-ip",
        ]
        .map(|name| {
            headers
                .get(name)
                .map(|v| v.to_str().expect("ASCII").to_owned())
        })
    }

    #[test]
    fn forwarding_headers_are_the_gateways_own() {
        assert_eq!(
            forwarded("10.0.0.7:5000", "mcp.test:8080"),
            [
                Some(r#"for="10.0.0.7";proto=http;host="mcp.test:8080""#.into()),
                Some("10.0.0.7".into()),
                Some("mcp.test:8080".into()),
                None,
            ]
        );
        // IPv6 in brackets (RFC 7239 §6); a Host that could break out of the
        // quoted parameter is dropped rather than repeated.
        assert_eq!(
            forwarded("[2001:db8::1]:5000", "evil\";for=1.2.3.4"),
            [
                Some(r#"for="[2001:db8::1]";proto=http"#.into()),
                Some("2001:db8::1".into()),
                None,
                None,
            ]
        );
        // No peer known: no address is made up.
        assert_eq!(
            forwarded("not an address", "mcp.test"),
            [
                Some(r#"proto=http;host="mcp.test""#.into()),
                None,
                Some("mcp.test".into()),
                None,
            ]
        );
        assert_eq!(
            forwarded("not an address", "")[..2],
            [Some("proto=http".into()), None]
        );
    }
}
