//! The `Origin` check: DNS rebinding stopped at the gateway, whatever the
//! upstream does. The gateway sends the upstream its own `Host`, so an
//! upstream's DNS-rebinding defence never sees the name a browser used; the
//! gateway must look itself.
//!
//! A request with an `Origin` passes when that origin is the gateway's own
//! (`http://` + the request's `Host`; on a loopback listener only a loopback
//! name, `localhost`, `127.0.0.1` or `[::1]`, since a rebound page sends its
//! own name as `Host` and `Origin` alike) or one given by `--allowed-origin`.
//! Anything else, `null` included, is 403, judged before the key is looked
//! at; the layer then looks at the key only to audit the refusal against it.
//! Requests without `Origin` (non-browser clients) are not affected.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode, Uri, header, request::Parts};
use keysmith_verify::{
    VerifyCode,
    layer::{GuardRefusal, RequestGuard},
};
use serde_json::json;
use url::{Host, Url};

/// An origin given by `--allowed-origin`, in the form browsers send
/// (`https://app.example.com`, default port dropped, lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    /// `scheme://host[:port]` with scheme `http` or `https`, nothing after.
    pub fn parse(text: &str) -> Result<Self, String> {
        let explain = || {
            format!(
                "`{text}` is not an origin: write scheme://host[:port], e.g. https://app.example.com"
            )
        };
        let url = Url::parse(text).map_err(|_| explain())?;
        let bare = url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
            return Err(explain());
        }
        Ok(Self(url.origin().ascii_serialization()))
    }
}

/// Which origins may send requests through the gateway.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    allowed: Vec<AllowedOrigin>,
    /// Only loopback names are the gateway's own (see the module doc).
    loopback_listener: bool,
}

impl OriginPolicy {
    /// The policy of a gateway listening on `listener`.
    pub fn new(allowed: Vec<AllowedOrigin>, listener: SocketAddr) -> Self {
        Self {
            allowed,
            loopback_listener: listener.ip().is_loopback(),
        }
    }

    /// `Ok` when the request may go on; the reason it may not otherwise.
    fn judge(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), &'static str> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (None, _) => return Ok(()),
            (Some(origin), None) => origin,
            (Some(_), Some(_)) => return Err("more than one Origin header"),
        };
        let origin = origin
            .to_str()
            .ok()
            .and_then(|text| Url::parse(text).ok())
            .map(|url| url.origin())
            .filter(url::Origin::is_tuple)
            .ok_or("Origin is not an http(s) origin")?
            .ascii_serialization();
        if self.allowed.iter().any(|allowed| allowed.0 == origin) {
            return Ok(());
        }
        match self.own_origin(headers, uri) {
            Some(own) if own == origin => Ok(()),
            _ => Err("Origin is not this gateway's own nor one of --allowed-origin"),
        }
    }

    /// `http://` + the request's `Host`, when that is a name this gateway
    /// answers to as its own.
    fn own_origin(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(host), None) => host.to_str().ok()?,
            (None, _) => uri.authority()?.as_str(),
            (Some(_), Some(_)) => return None,
        };
        let url = Url::parse(&format!("http://{host}")).ok()?;
        if url.path() != "/" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let loopback = match url.host()? {
            Host::Domain(name) => name == "localhost",
            Host::Ipv4(ip) => ip.is_loopback(),
            Host::Ipv6(ip) => ip.is_loopback(),
        };
        (loopback || !self.loopback_listener).then(|| url.origin().ascii_serialization())
    }
}

/// Run by the layer ([`VerifyLayerBuilder::guard`]), so a genuine key sent
/// from a foreign origin is audited (`origin_not_allowed`) while the answer,
/// the same whatever the key, tells the page nothing about it.
///
/// [`VerifyLayerBuilder::guard`]: keysmith_verify::VerifyLayerBuilder::guard
impl RequestGuard for OriginPolicy {
    fn check(&self, head: &Parts) -> Result<(), GuardRefusal> {
        self.judge(&head.headers, &head.uri).map_err(|reason| {
            tracing::info!(reason, "request refused for its Origin");
            // The transport's advice: 403, a JSON-RPC error without an id.
            GuardRefusal {
                status: StatusCode::FORBIDDEN,
                body: json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": reason}}),
                code: VerifyCode::OriginNotAllowed,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn judge(listener: &str, allowed: &[&str], host: &str, origin: Option<&str>) -> bool {
        let allowed = allowed
            .iter()
            .map(|o| AllowedOrigin::parse(o).expect("origin"))
            .collect();
        let policy = OriginPolicy::new(allowed, listener.parse().expect("addr"));
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(origin) = origin {
            headers.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).expect("origin"),
            );
        }
        policy.judge(&headers, &Uri::from_static("/mcp")).is_ok()
    }

    #[test]
    fn a_loopback_gateway_owns_only_loopback_names() {
        let local = "127.0.0.1:8787";
        assert!(judge(local, &[], "127.0.0.1:8787", None));
        assert!(
            judge(local, &[], "evil.example.com", None),
            "no Origin: not a browser"
        );
        assert!(judge(
            local,
            &[],
            "127.0.0.1:8787",
            Some("http://127.0.0.1:8787")
        ));
        assert!(judge(
            local,
            &[],
            "localhost:8787",
            Some("http://LOCALHOST:8787")
        ));
        assert!(judge(local, &[], "[::1]:8787", Some("http://[::1]:8787")));
        // A rebound name sends itself as Host and Origin alike.
        assert!(!judge(
            local,
            &[],
            "evil.example.com:8787",
            Some("http://evil.example.com:8787")
        ));
        assert!(!judge(
            local,
            &[],
            "127.0.0.1:8787",
            Some("http://127.0.0.1:9999")
        ));
        assert!(!judge(
            local,
            &[],
            "127.0.0.1:8787",
            Some("https://127.0.0.1:8787")
        ));
        assert!(!judge(local, &[], "127.0.0.1:8787", Some("null")));
        assert!(!judge(local, &[], "127.0.0.1:8787", Some("")));
        assert!(judge(
            local,
            &["https://app.example.com"],
            "127.0.0.1:8787",
            Some("https://app.example.com:443")
        ));
    }

    #[test]
    fn a_public_gateway_owns_the_host_it_is_called_by() {
        let public = "0.0.0.0:8787";
        assert!(judge(
            public,
            &[],
            "mcp.example.com",
            Some("http://mcp.example.com")
        ));
        assert!(judge(
            public,
            &[],
            "mcp.example.com:80",
            Some("http://mcp.example.com")
        ));
        assert!(
            !judge(
                public,
                &[],
                "mcp.example.com",
                Some("https://mcp.example.com")
            ),
            "the listener speaks http"
        );
        assert!(judge(
            public,
            &["https://mcp.example.com"],
            "mcp.example.com",
            Some("https://mcp.example.com")
        ));
        assert!(!judge(
            public,
            &[],
            "mcp.example.com",
            Some("http://other.example.com")
        ));
        assert!(!judge(
            public,
            &[],
            "user@mcp.example.com",
            Some("http://mcp.example.com")
        ));
    }

    #[test]
    fn allowed_origins_are_origins() {
        assert_eq!(
            AllowedOrigin::parse("HTTPS://App.Example.com:443").map(|o| o.0),
            Ok("https://app.example.com".to_owned())
        );
        for refused in [
            "*",
            "null",
            "app.example.com",
            "https://app.example.com/x",
            "ftp://app.example.com",
            "https://u@app.example.com",
            "https://app.example.com?x",
        ] {
            assert!(AllowedOrigin::parse(refused).is_err(), "{refused}");
        }
    }
}
