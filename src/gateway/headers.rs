//! What the gateway does to headers on the way through: hop-by-hop headers
//! and the ones a `Connection` header names are dropped both ways (RFC 9110
//! §7.6.1), and client-sent forwarding headers are replaced by the gateway's.
//!
//! This runs on every request, so nothing here edits a `HeaderMap`: the
//! request's fields are written straight into the upstream request's head,
//! skipping what must not go, then the gateway's own (`Host`, forwarding);
//! an answer's connection-scoped fields are skipped as its head is read
//! (`pool/framing.rs`). The client's address is formatted once per
//! connection ([`ClientPeer`]).

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
/// A `match` on the name's text: a length switch and at most one compare per
/// name (`HeaderName::as_str` is a table lookup for the standard ones).
/// Lowercase names only, as `HeaderName` holds them.
pub(super) fn is_hop_by_hop(name: &str) -> bool {
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

/// The names a `Connection` field lists besides the hop-by-hop ones:
/// fields that belong to this connection only. Nothing is allocated for a
/// request without `Connection`, or with only `keep-alive` or `close`.
pub(super) fn named_by_connection<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<HeaderName> {
    let mut named = Vec::new();
    for token in values.flat_map(|list| list.split(|&byte| byte == b',')) {
        let token = token.trim_ascii();
        // The usual tokens, compared as bytes: no name built for them.
        if token.eq_ignore_ascii_case(b"keep-alive") || token.eq_ignore_ascii_case(b"close") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(token)
            && !is_hop_by_hop(name.as_str())
        {
            named.push(name);
        }
    }
    named
}

/// Writes the header fields a request goes upstream with, one
/// `name: value` line each: the client's fields but the hop-by-hop ones,
/// those `Connection` names, its forwarding fields, `Host` and
/// `Content-Length` (the body's framing is the exchange's); then `Host`
/// (the upstream's own) and the gateway's forwarding fields.
// Out of line: a part a profile names (scripts/bench-instructions), also
// in a build with link-time optimization.
#[inline(never)]
pub(super) fn write_request_fields(
    out: &mut Vec<u8>,
    headers: &HeaderMap,
    peer: Option<&ClientPeer>,
    upstream_host: &HeaderValue,
) {
    let named = if headers.contains_key(header::CONNECTION) {
        named_by_connection(
            headers
                .get_all(header::CONNECTION)
                .iter()
                .map(HeaderValue::as_bytes),
        )
    } else {
        Vec::new()
    };
    // `None` inside: the client sent `Host` twice, and which one a reader
    // takes is its own choice; the forwarding fields then name none.
    let mut client_host: Option<Option<&HeaderValue>> = None;
    for (name, value) in headers {
        let text = name.as_str();
        if text == "host" {
            client_host = Some(if client_host.is_none() {
                Some(value)
            } else {
                None
            });
        } else if !(is_hop_by_hop(text)
            || is_forwarding(text)
            || text == "content-length"
            || named.contains(name))
        {
            write_field(out, text, value.as_bytes());
        }
    }
    write_field(out, "host", upstream_host.as_bytes());
    write_field(out, "x-forwarded-proto", b"http");
    if let Some(peer) = peer {
        write_field(out, "x-forwarded-for", peer.ip.as_bytes());
    }
    let client_host = client_host
        .flatten()
        .filter(|host| host.to_str().is_ok_and(is_host));
    if let Some(host) = client_host {
        write_field(out, "x-forwarded-host", host.as_bytes());
    }
    // `for="<ip>";proto=http`, then `;host="<host>"`: `is_host` keeps the
    // quotes closed.
    out.extend_from_slice(b"forwarded: ");
    out.extend_from_slice(peer.map_or(&b"proto=http"[..], |peer| peer.forwarded.as_bytes()));
    if let Some(host) = client_host {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(host.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n");
}

/// One `name: value` line of a head. Both come from a `HeaderName` and a
/// `HeaderValue`, or are the gateway's own: neither holds a CR or LF.
#[inline]
pub(super) fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
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

    /// The fields a request with `headers` goes upstream with, read back
    /// from the bytes written.
    fn written(headers: &HeaderMap, peer: Option<&ClientPeer>) -> HeaderMap {
        let mut out = Vec::new();
        write_request_fields(
            &mut out,
            headers,
            peer,
            &HeaderValue::from_static("upstream.test"),
        );
        out.extend_from_slice(b"\r\n");
        let mut lines = [httparse::EMPTY_HEADER; 64];
        let Ok(httparse::Status::Complete((length, lines))) =
            httparse::parse_headers(&out, &mut lines)
        else {
            panic!("not a valid head: {}", String::from_utf8_lossy(&out));
        };
        assert_eq!(length, out.len());
        let mut read = HeaderMap::new();
        for line in lines {
            read.append(
                HeaderName::from_bytes(line.name.as_bytes()).expect("a name"),
                HeaderValue::from_bytes(line.value).expect("a value"),
            );
        }
        read
    }

    /// What is left of the client's fields once the gateway's own are
    /// taken out.
    fn clients(headers: &HeaderMap) -> HeaderMap {
        let mut read = written(headers, None);
        for own in ["host", "x-forwarded-proto", "x-forwarded-host", "forwarded"] {
            read.remove(own);
        }
        read
    }

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
        headers.append("x-secretive", HeaderValue::from_static("twice"));
        let mut untouched = HeaderMap::new();
        untouched.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        untouched.insert("x-secretive", HeaderValue::from_static("kept"));
        untouched.append("x-secretive", HeaderValue::from_static("twice"));
        assert_eq!(clients(&headers), untouched);
        // Nothing to drop: nothing changes.
        assert_eq!(clients(&untouched), untouched);
        // An upgrade alone, without `Connection`, is still dropped.
        let mut upgrade = untouched.clone();
        upgrade.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(clients(&upgrade), untouched);
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
            assert!(clients(&headers).is_empty(), "{name} was forwarded");
        }
        // Names are matched whole: near misses are ordinary headers.
        for name in ["t", "tes", "upgrades", "x-connection", "keep-alive-x"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static("a"));
            assert_eq!(clients(&headers).len(), 1, "{name} was dropped");
        }
    }

    #[test]
    fn host_and_length_are_the_gateways_to_write() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("mcp.test"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        let read = written(&headers, None);
        assert_eq!(
            read.get_all(header::HOST).iter().collect::<Vec<_>>(),
            ["upstream.test"]
        );
        assert!(!read.contains_key(header::CONTENT_LENGTH));
        assert_eq!(read["x-forwarded-host"], "mcp.test");
        // Two: the forwarding fields name neither.
        headers.append(header::HOST, HeaderValue::from_static("evil.test"));
        let read = written(&headers, None);
        assert_eq!(
            read.get_all(header::HOST).iter().collect::<Vec<_>>(),
            ["upstream.test"]
        );
        assert!(!read.contains_key("x-forwarded-host"));
        assert_eq!(read["forwarded"], "proto=http");
    }

    fn forwarded(peer: &str, host: &'static str) -> [Option<String>; 4] {
        let mut headers = HeaderMap::new();
        for name in FORWARDING {
            headers.insert(name, HeaderValue::from_static("spoofed"));
            headers.append(name, HeaderValue::from_static("spoofed again"));
        }
        headers.insert("x-forwarded", HeaderValue::from_static("kept"));
        headers.insert(header::HOST, HeaderValue::from_static(host));
        let peer = peer.parse().ok().map(ClientPeer::new);
        let headers = written(&headers, peer.as_ref());
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
