//! Identity headers: what the layer injects, and the scrubbing of anything a
//! client sent that could pass for it.

use http::{HeaderMap, HeaderName, HeaderValue, header};

pub const SERVICE_USER_HEADER: HeaderName = HeaderName::from_static("x-keysmith-service-user");
pub const SERVICE_USER_ID_HEADER: HeaderName =
    HeaderName::from_static("x-keysmith-service-user-id");
pub const KEY_ID_HEADER: HeaderName = HeaderName::from_static("x-keysmith-key-id");
pub const TENANT_HEADER: HeaderName = HeaderName::from_static("x-keysmith-tenant");

/// `x-keysmith-…` in any case and with `_` for `-` (some servers fold them
/// together). Runs on every header of every request: no allocation.
pub(super) fn is_reserved(name: &str) -> bool {
    const PREFIX: &[u8] = b"x-keysmith-";
    let name = name.as_bytes();
    name.len() >= PREFIX.len()
        && name.iter().zip(PREFIX).all(|(&c, &expected)| {
            let c = c.to_ascii_lowercase();
            (if c == b'_' { b'-' } else { c }) == expected
        })
}

/// Removes every client-sent identity header, and the `Connection` tokens
/// naming them (which would make a downstream proxy drop the injected ones).
pub fn scrub(headers: &mut HeaderMap) {
    let reserved: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_reserved(n.as_str()))
        .cloned()
        .collect();
    for name in reserved {
        headers.remove(&name);
    }
    let tokens: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.iter().any(|t| is_reserved(t)) {
        headers.remove(header::CONNECTION);
        let kept: Vec<&str> = tokens
            .iter()
            .filter(|t| !is_reserved(t))
            .map(String::as_str)
            .collect();
        if let Ok(value) = HeaderValue::from_str(&kept.join(", "))
            && !kept.is_empty()
        {
            headers.insert(header::CONNECTION, value);
        }
    }
}

/// Sets the verified identity (its headers made once per cached key, see
/// `crate::identity`) and removes the credential: the inner service must
/// never see, log or pass on the key.
pub fn inject(headers: &mut HeaderMap, identity: &[(HeaderName, HeaderValue)]) {
    headers.remove(header::AUTHORIZATION);
    // Room for all of them at once, rather than growing on the way.
    headers.reserve(identity.len());
    for (name, value) in identity {
        headers.insert(name.clone(), value.clone());
    }
}

/// The presented key from `Authorization: Bearer <key>` (scheme
/// case-insensitive). Two `Authorization` headers are no key at all: servers
/// disagree on which one counts.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let value = value.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_spelling_and_connection_tricks() {
        let mut h = HeaderMap::new();
        h.insert("x-keysmith-service-user", HeaderValue::from_static("admin"));
        h.insert("X-Keysmith-Tenant", HeaderValue::from_static("other"));
        h.insert("x_keysmith_key_id", HeaderValue::from_static("forged"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Keysmith-Service-User"),
        );
        scrub(&mut h);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h["x-other"], "kept");
        assert_eq!(h[header::CONNECTION], "keep-alive");
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(bearer(&h), None, "two Authorization headers are ambiguous");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
