//! Where a webhook may point. Checked when an endpoint is created and again
//! before every delivery, because DNS can change in between.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

use crate::error::{AppError, AppResult};

/// A URL that passed the scheme rules; the addresses are checked separately.
#[derive(Debug, Clone)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// https, or http for a loopback host only (a receiver on the same machine).
    pub fn parse(raw: &str) -> AppResult<Self> {
        let invalid = |why: &str| AppError::Validation(format!("url: {why}"));
        let url = Url::parse(raw.trim()).map_err(|_| invalid("not a valid URL"))?;
        if url.host().is_none() {
            return Err(invalid("a URL with a host is required"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials in the URL are not allowed"));
        }
        let url = Self(url);
        match url.0.scheme() {
            "https" => Ok(url),
            "http" if url.is_loopback() => Ok(url),
            "http" => Err(invalid("https is required unless the host is loopback")),
            _ => Err(invalid(
                "only https (or http to a loopback host) is allowed",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// Whether the URL itself names the loopback host, so that resolving to a
    /// loopback address is what the operator asked for. `[::ffff:127.0.0.1]`
    /// is deliberately not loopback here: it is a way to smuggle one in.
    fn is_loopback(&self) -> bool {
        match self.0.host() {
            Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// Resolves the host and refuses private, link-local, unique-local,
    /// unspecified and (unless the URL is loopback) loopback addresses, unless
    /// `allow_private`. Returns the addresses to connect to.
    pub async fn resolve(&self, allow_private: bool) -> AppResult<Vec<SocketAddr>> {
        let port = self.0.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match self.0.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| AppError::Validation("url: the host does not resolve".into()))?
                .collect(),
            None => Vec::new(),
        };
        if addrs.is_empty() {
            return Err(AppError::Validation(
                "url: the host does not resolve".into(),
            ));
        }
        let loopback_url = self.is_loopback();
        for addr in &addrs {
            if let Some(why) = refused(addr.ip(), loopback_url, allow_private) {
                return Err(AppError::Validation(format!(
                    "url: the host resolves to a {why} address, which is refused \
                     (set KEYSMITH_WEBHOOK_ALLOW_PRIVATE=1 to allow)"
                )));
            }
        }
        Ok(addrs)
    }
}

/// Why `ip` is refused, if it is.
fn refused(ip: IpAddr, loopback_url: bool, allow_private: bool) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if ip.is_loopback() {
        return (!loopback_url && !allow_private).then_some("loopback");
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Some("unspecified or multicast");
    }
    if allow_private {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_private() || v4.is_broadcast() || a == 0 {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if first & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn scheme_rules() {
        assert!(WebhookUrl::parse("https://hooks.example.com/x").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(WebhookUrl::parse("http://localhost/x").is_ok());
        assert!(WebhookUrl::parse("http://hooks.example.com/x").is_err());
        assert!(WebhookUrl::parse("http://[::ffff:127.0.0.1]/x").is_err());
        assert!(WebhookUrl::parse("ftp://example.com/x").is_err());
        assert!(WebhookUrl::parse("not a url").is_err());
        assert!(WebhookUrl::parse("https://u:p@example.com/").is_err());
    }

    #[test]
    fn private_ranges_are_refused_unless_allowed() {
        for bad in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "fd00::1",
            "fe80::1",
            "::",
            "100.64.0.1",
        ] {
            assert!(refused(ip(bad), false, false).is_some(), "{bad}");
        }
        assert!(refused(ip("127.0.0.1"), false, false).is_some());
        assert!(refused(ip("::ffff:127.0.0.1"), false, false).is_some());
        assert!(refused(ip("127.0.0.1"), true, false).is_none());
        assert!(refused(ip("10.0.0.1"), false, true).is_none());
        assert!(refused(ip("93.184.216.34"), false, false).is_none());
        assert!(refused(ip("2606:4700::1"), false, false).is_none());
    }
}
