//! A protected resource (RFC 9728): the public URL a layer or gateway
//! serves, which OAuth access tokens must be bound to (RFC 8707), and the
//! metadata that tells clients which authorization server issues them.

use http::Uri;
use serde_json::json;

/// Where RFC 9728 puts the metadata (plus the resource's path, if any).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Why a resource URL was refused; the message is shown to whoever gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a resource is an absolute https:// URL (http:// only for localhost, 127.0.0.0/8 or [::1]) without user, query or fragment"
)]
pub struct InvalidResource;

/// The canonical form of a resource URL, the one tokens are bound to and
/// compared by: lower-case scheme and host, no default port, no trailing
/// `/` (the MCP specification's canonical server URI). Absolute `https`
/// only, or `http` to a loopback host; no user info, query or fragment.
pub fn canonical_resource(raw: &str) -> Result<String, InvalidResource> {
    if raw.contains(['#', '?', '@']) || raw.len() > 2048 {
        return Err(InvalidResource);
    }
    let uri: Uri = raw.parse().map_err(|_| InvalidResource)?;
    let scheme = uri
        .scheme_str()
        .ok_or(InvalidResource)?
        .to_ascii_lowercase();
    let authority = uri.authority().ok_or(InvalidResource)?;
    let host = authority.host().to_ascii_lowercase();
    let secure = match scheme.as_str() {
        "https" => true,
        "http" if is_loopback(&host) => false,
        _ => return Err(InvalidResource),
    };
    if host.is_empty() {
        return Err(InvalidResource);
    }
    let default_port = if secure { 443 } else { 80 };
    let port = match authority.port_u16() {
        Some(port) if port != default_port => format!(":{port}"),
        _ => String::new(),
    };
    let path = uri.path().trim_end_matches('/');
    Ok(format!("{scheme}://{host}{port}{path}"))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a layer announces and enforces as a protected resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    resource: String,
    authorization_server: String,
    scopes_supported: Vec<String>,
    metadata_url: String,
    metadata_path: String,
}

impl ProtectedResource {
    /// `resource`: this server's public URL; `issuer`: the authorization
    /// server (Keysmith's `{KEYSMITH_PUBLIC_URL}/oauth/{tenant}`). Scopes
    /// announced: every tool, resource and prompt (`tools:*`, …).
    pub fn new(resource: &str, issuer: &str) -> Result<Self, InvalidResource> {
        let resource = canonical_resource(resource)?;
        let uri: Uri = resource.parse().map_err(|_| InvalidResource)?;
        let origin_len = resource.len() - uri.path().trim_end_matches('/').len();
        // RFC 9728 §3.1: the well-known part goes between host and path.
        let metadata_path = format!("{METADATA_PATH}{}", &resource[origin_len..]);
        Ok(Self {
            metadata_url: format!("{}{metadata_path}", &resource[..origin_len]),
            metadata_path,
            resource,
            authorization_server: issuer.to_owned(),
            scopes_supported: ["tools:*", "resources:*", "prompts:*"]
                .map(str::to_owned)
                .to_vec(),
        })
    }

    /// The scopes announced in the metadata and in the `401` challenge.
    pub fn scopes_supported(mut self, scopes: Vec<String>) -> Self {
        self.scopes_supported = scopes;
        self
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The metadata's URL, announced in every `401` challenge.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The paths that serve the metadata: the resource's own
    /// (path-suffixed) form, and the bare well-known path that clients
    /// which ignore the suffix ask.
    pub fn metadata_paths(&self) -> Vec<String> {
        let mut paths = vec![self.metadata_path.clone()];
        if self.metadata_path != METADATA_PATH {
            paths.push(METADATA_PATH.to_owned());
        }
        paths
    }

    /// The RFC 9728 metadata document.
    pub fn metadata(&self) -> serde_json::Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.authorization_server],
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }

    /// Whether a token bound to `audience` is for this resource.
    pub fn accepts(&self, audience: &str) -> bool {
        canonical_resource(audience).is_ok_and(|a| a == self.resource)
    }

    /// `WWW-Authenticate` of a `401`: where the metadata is and what to ask for.
    pub(crate) fn challenge(&self, invalid_token: bool) -> String {
        let error = if invalid_token {
            "error=\"invalid_token\", "
        } else {
            ""
        };
        format!(
            "Bearer {error}resource_metadata=\"{}\", scope=\"{}\"",
            self.metadata_url,
            self.scopes_supported.join(" ")
        )
    }

    /// `WWW-Authenticate` of a `403` for a capability outside a token's
    /// scopes (step-up: the scope it would need).
    pub(crate) fn insufficient_scope(&self, scope: &str) -> String {
        let scope = if scope.is_empty() {
            String::new()
        } else {
            let escaped = scope.replace('\\', "\\\\").replace('"', "\\\"");
            format!(" scope=\"{escaped}\",")
        };
        format!(
            "Bearer error=\"insufficient_scope\",{scope} resource_metadata=\"{}\"",
            self.metadata_url
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (raw, canonical) in [
            ("https://MCP.example.com/mcp", "https://mcp.example.com/mcp"),
            (
                "https://mcp.example.com:443/mcp/",
                "https://mcp.example.com/mcp",
            ),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            (
                "https://mcp.example.com:8443",
                "https://mcp.example.com:8443",
            ),
            ("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000/mcp"),
            ("http://localhost/mcp", "http://localhost/mcp"),
            ("http://[::1]:80/", "http://[::1]"),
        ] {
            assert_eq!(canonical_resource(raw).as_deref(), Ok(canonical), "{raw}");
        }
        for bad in [
            "",
            "mcp",
            "/mcp",
            "http://mcp.example.com/mcp",
            "http://10.0.0.1/mcp",
            "ftp://mcp.example.com",
            "https://user@mcp.example.com",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#f",
            "https:///mcp",
        ] {
            assert_eq!(canonical_resource(bad), Err(InvalidResource), "{bad}");
        }
    }

    #[test]
    fn metadata_paths_and_document() {
        let resource = ProtectedResource::new(
            "https://mcp.example.com/mcp",
            "https://ks.example.com/oauth/acme",
        )
        .expect("valid");
        assert_eq!(
            resource.metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            resource.metadata_paths(),
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            resource.metadata()["authorization_servers"][0],
            "https://ks.example.com/oauth/acme"
        );
        assert!(resource.accepts("https://mcp.example.com/mcp/"));
        assert!(!resource.accepts("https://other.example.com/mcp"));
        let root = ProtectedResource::new("https://mcp.example.com", "https://i").expect("valid");
        assert_eq!(
            root.metadata_paths(),
            ["/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            resource.insufficient_scope("tools:a\"b"),
            "Bearer error=\"insufficient_scope\", scope=\"tools:a\\\"b\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        );
    }
}
