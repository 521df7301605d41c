//! Redirect URIs: which may be registered, and whether the one an
//! authorization request names is one of them. Exact string match, except
//! that a loopback `http` redirect may use any port (RFC 8252 §7.3: a
//! native app picks a free port at run time).

use url::{Host, Url};

/// Schemes a redirect may never use: they run code or read local data in
/// the browser that follows the redirect, or are not a redirect at all.
const FORBIDDEN_SCHEMES: [&str; 12] = [
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "ftp",
    "ws",
    "wss",
    "mailto",
];

/// The longest redirect URI accepted (registration abuse limit).
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// A redirect URI that may be registered: https; http to a loopback host
/// (`127.0.0.1`, `[::1]`, `localhost`); or a private-use scheme of a
/// native app (RFC 8252 §7.1, such as `cursor://…`). Never a fragment
/// (RFC 6749 §3.1.2), credentials, or a scheme that runs in the browser.
/// Returns why not.
pub fn check_registrable(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!(
            "a redirect URI is at most {MAX_REDIRECT_URI_LEN} characters"
        ));
    }
    if raw.trim() != raw || raw.chars().any(char::is_control) {
        return Err(format!("{raw:?}: no spaces or control characters"));
    }
    let url = Url::parse(raw).map_err(|_| format!("{raw:?} is not an absolute URI"))?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(format!("{raw:?}: a redirect URI has no fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?}: no credentials in a redirect URI"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "https" => Err(format!("{raw:?}: an https redirect URI needs a host")),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "{raw:?}: http is allowed only to a loopback host (127.0.0.1, [::1], localhost); use https"
        )),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
            Err(format!("{raw:?}: the scheme {scheme}: is not allowed"))
        }
        _ if url.cannot_be_a_base() => Err(format!(
            "{raw:?}: a native app's redirect URI is of the form <scheme>:/<path> or <scheme>://<host>/<path>"
        )),
        _ => Ok(()),
    }
}

/// Whether `presented` is one of `registered`: the same string, or for a
/// loopback `http` redirect the same URI on any port.
pub fn allowed(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|r| r == presented) || {
        let Some(presented) = loopback_without_port(presented) else {
            return false;
        };
        registered
            .iter()
            .filter_map(|r| loopback_without_port(r))
            .any(|r| r == presented)
    }
}

/// An `http` loopback URI with its port removed, else `None`. Parsed, so
/// only the port differs: the host spelling, path and query must be the
/// same as registered (`localhost` is not `127.0.0.1`).
fn loopback_without_port(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw).ok()?;
    if url.scheme() != "http" || !is_loopback_host(&url) || raw.contains('#') {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.to_string())
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The origin a person is shown for a URI: `scheme://host[:port]`.
pub fn origin_of(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => Some(format!("{}:", url.scheme())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn registrable_redirects() {
        for good in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://chatgpt.com/connector_platform_oauth_redirect",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:33418/",
            "http://[::1]:8080/cb",
            "http://localhost:6274/oauth/callback",
            "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback",
            "com.example.app:/oauth2redirect",
            "https://app.example.com/cb?tenant=a",
        ] {
            assert!(check_registrable(good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html,<script>",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "http://example.com/cb",
            "http://127.0.0.2/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "https://example.com/cb#frag",
            "https://example.com/cb#",
            "https://user:pw@example.com/cb",
            "/relative/cb",
            "example.com/cb",
            " https://example.com/cb",
            "https://example.com/c\nb",
            "mailto:someone@example.com",
            "urn:ietf:wg:oauth:2.0:oob",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad}");
        }
        assert!(check_registrable(&format!("https://e.com/{}", "a".repeat(2000))).is_err());
    }

    #[test]
    fn exact_match_except_the_loopback_port() {
        let registered = uris(&[
            "https://app.example.com/cb",
            "http://127.0.0.1/callback",
            "http://localhost:3000/cb?x=1",
            "http://[::1]/cb",
        ]);
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:51234/callback",
            "http://127.0.0.1/callback",
            "http://localhost:9999/cb?x=1",
            "http://localhost/cb?x=1",
            "http://[::1]:4000/cb",
        ] {
            assert!(allowed(&registered, ok), "{ok}");
        }
        for refused in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?next=https://evil.example",
            "https://app.example.com/CB",
            "https://app.example.com:443/cb",
            "https://evil.example/cb",
            "https://app.example.com.evil.example/cb",
            "https://app.example.com/cb#x",
            "http://127.0.0.1:51234/callback/../evil",
            "http://127.0.0.1:51234/other",
            "http://localhost:51234/callback",
            "http://127.0.0.1:3000/cb?x=1",
            "http://localhost:9999/cb?x=2",
            "http://localhost:9999/cb",
            "https://127.0.0.1:51234/callback",
            "http://u@127.0.0.1:5000/callback",
            "http://127.0.0.1:5000/callback#f",
            "",
        ] {
            assert!(!allowed(&registered, refused), "{refused}");
        }
    }

    #[test]
    fn a_non_loopback_http_registration_never_matches_another_port() {
        let registered = uris(&["https://app.example.com:8443/cb"]);
        assert!(allowed(&registered, "https://app.example.com:8443/cb"));
        assert!(!allowed(&registered, "https://app.example.com:9443/cb"));
    }

    #[test]
    fn origins_shown_to_people() {
        assert_eq!(
            origin_of("https://claude.ai/api/mcp/auth_callback").as_deref(),
            Some("https://claude.ai")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:5000/cb").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            origin_of("cursor://anysphere.cursor-retrieval/cb").as_deref(),
            Some("cursor:")
        );
    }
}
