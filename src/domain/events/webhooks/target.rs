//! Where a webhook may point. Checked when an endpoint is created and again
//! before every delivery, because DNS can change in between.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::domain::error::{DomainError, DomainResult};

/// A URL that passed the scheme rules; the addresses are checked separately.
#[derive(Debug, Clone)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// https, or http for a loopback host only (a receiver on the same machine).
    pub fn parse(raw: &str) -> DomainResult<Self> {
        let invalid = |why: &str| DomainError::Validation(format!("url: {why}"));
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

    /// Resolves the host and refuses every address that is not global
    /// unicast (loopback, private, link-local, reserved, documentation, …;
    /// IPv4 carried inside IPv6 judged as the IPv4 it carries), unless
    /// `allow_private`: the operator's one opt-in for receivers on the
    /// host itself or its private network. Returns the addresses to
    /// connect to.
    pub async fn resolve(&self, allow_private: bool) -> DomainResult<Vec<SocketAddr>> {
        let port = self.0.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match self.0.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| DomainError::Validation("url: the host does not resolve".into()))?
                .collect(),
            None => Vec::new(),
        };
        if addrs.is_empty() {
            return Err(DomainError::Validation(
                "url: the host does not resolve".into(),
            ));
        }
        for addr in &addrs {
            if let Some(why) = refused(addr.ip(), allow_private) {
                return Err(DomainError::Validation(format!(
                    "url: the host resolves to a {why} address, which is refused \
                     (set KEYSMITH_WEBHOOK_ALLOW_PRIVATE=1 to allow)"
                )));
            }
        }
        Ok(addrs)
    }
}

/// Why `ip` is refused, if it is.
fn refused(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4, allow_private),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => refused_v4(v4, allow_private),
            None => refused_v6(v6, allow_private),
        },
    }
}

fn refused_v4(ip: Ipv4Addr, allow_private: bool) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    // Never a receiver, whatever the operator allows.
    if a == 0 || ip.is_multicast() || a >= 240 {
        return Some("unspecified, multicast or reserved");
    }
    if allow_private {
        return None;
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if (a, b) == (198, 18) || (a, b) == (198, 19) {
        Some("benchmarking")
    } else if (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 88, 99) {
        Some("protocol-assignment or relay")
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        Some("documentation")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr, allow_private: bool) -> Option<&'static str> {
    let [first, second, ..] = ip.segments();
    if ip.is_unspecified() || ip.is_multicast() {
        return Some("unspecified or multicast");
    }
    if ip.is_loopback() {
        return (!allow_private).then_some("loopback");
    }
    // Unique-local (fc00::/7), link-local (fe80::/10) and the deprecated
    // site-local (fec0::/10): the operator's own networks.
    if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        return (!allow_private).then_some("private or link-local");
    }
    // Global unicast is 2000::/3; inside it, the IETF's own blocks (Teredo,
    // ORCHID, …: 2001::/23), documentation (2001:db8::/32, 3fff::/20).
    let global_unicast = first & 0xe000 == 0x2000;
    let ietf = first == 0x2001 && second < 0x0200;
    let documentation =
        (first == 0x2001 && second == 0x0db8) || (first == 0x3fff && second < 0x1000);
    (!global_unicast || ietf || documentation).then_some("reserved or non-global")
}

/// The IPv4 address an IPv6 address stands for, where it carries one: mapped
/// (`::ffff:a.b.c.d`), the deprecated compatible form (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`, also the local-use `64:ff9b:1::/48`) and 6to4
/// (`2002:aabb:ccdd::/48`). A receiver's address is judged by what the
/// packet finally reaches.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..]
            if !ip.is_loopback() && !ip.is_unspecified() =>
        {
            Some(low)
        }
        [0x64, 0xff9b, 0, 0, 0, 0, ..] | [0x64, 0xff9b, 1, ..] => Some(low),
        [0x2002, high, low16, ..] => Some(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (low16 >> 8) as u8,
            low16 as u8,
        )),
        _ => None,
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
    fn only_global_unicast_passes_by_default() {
        for bad in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.1",
            "198.19.255.1",
            "192.0.0.8",
            "192.0.2.1",
            "203.0.113.7",
            "::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "::ffff:0:7f00:1",
            "100::1",
        ] {
            assert!(refused(ip(bad), false).is_some(), "{bad}");
        }
        for never in [
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "ff02::1",
            "::ffff:0.0.0.0",
        ] {
            assert!(refused(ip(never), false).is_some(), "{never}");
            assert!(
                refused(ip(never), true).is_some(),
                "{never}, even when private is allowed"
            );
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1",
            "2a00:1450::1",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
            "2002:5db8:d822::1",
        ] {
            assert!(refused(ip(good), false).is_none(), "{good}");
        }
    }

    #[test]
    fn the_operator_opt_in_allows_loopback_and_private() {
        for private in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "192.168.1.1",
        ] {
            assert!(refused(ip(private), true).is_none(), "{private}");
        }
    }

    #[test]
    fn every_spelling_of_loopback_is_the_loopback_address() {
        for spelled in [
            "http://127.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://0177.0.0.1/x",
            "http://[::1]/x",
        ] {
            let url = WebhookUrl::parse(spelled).expect(spelled);
            let host = url.url().host();
            let loopback = match host {
                Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
                Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
                _ => panic!("{spelled}: {host:?}"),
            };
            assert!(refused(loopback, false).is_some(), "{spelled}");
        }
    }

    proptest::proptest! {
        /// Whatever the IPv4 address, its mapped, NAT64 and 6to4 spellings
        /// get the same verdict as the address itself.
        #[test]
        fn ipv4_inside_ipv6_is_judged_as_ipv4(bits: u32, allow_private: bool) {
            let v4 = Ipv4Addr::from(bits);
            let [a, b, c, d] = v4.octets();
            let expected = refused(IpAddr::V4(v4), allow_private).is_some();
            let mapped = v4.to_ipv6_mapped();
            let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            let six_to_four = Ipv6Addr::new(0x2002, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]), 0, 0, 0, 0, 1);
            for v6 in [mapped, nat64, six_to_four] {
                proptest::prop_assert_eq!(refused(IpAddr::V6(v6), allow_private).is_some(), expected, "{} as {}", v4, v6);
            }
        }
    }
}
