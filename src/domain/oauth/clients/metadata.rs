//! Client metadata (RFC 7591 §2) as a client describes itself: checked
//! once, at the edge (registration, an admin's form, a fetched metadata
//! document), before anything is stored or shown on a consent page.

use serde::Deserialize;

use super::{AuthMethod, GRANT_TYPES, redirect};
use crate::domain::error::DomainError;

/// Abuse limits on what a client may describe itself with.
pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_CLIENT_URI_LEN: usize = 2000;

/// Client metadata as sent (RFC 7591 §2, the fields Keysmith reads; the
/// others are ignored, as §2 allows).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawMetadata {
    pub redirect_uris: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
}

/// Why metadata was refused, as RFC 7591 §3.2.2 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub code: &'static str,
    pub message: String,
}

impl MetadataError {
    fn redirect(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_redirect_uri",
            message: message.into(),
        }
    }

    fn metadata(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_client_metadata",
            message: message.into(),
        }
    }
}

impl From<MetadataError> for DomainError {
    fn from(err: MetadataError) -> Self {
        DomainError::Validation(err.message)
    }
}

/// Metadata that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
}

impl ClientMetadata {
    /// Checks `raw`: 1 to [`MAX_REDIRECT_URIS`] registrable redirect URIs;
    /// a short printable name; an https `client_uri`; only the
    /// authorization-code grants (absent: both, which MCP clients expect);
    /// `response_types` only `code`; the auth method one Keysmith supports
    /// (absent: `client_secret_basic`, RFC 7591 §2).
    pub fn parse(raw: RawMetadata) -> Result<Self, MetadataError> {
        let redirect_uris = raw.redirect_uris.unwrap_or_default();
        if redirect_uris.is_empty() {
            return Err(MetadataError::redirect(
                "redirect_uris is required: at least one",
            ));
        }
        if redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(MetadataError::redirect(format!(
                "at most {MAX_REDIRECT_URIS} redirect_uris"
            )));
        }
        for uri in &redirect_uris {
            redirect::check_registrable(uri).map_err(MetadataError::redirect)?;
        }
        let mut unique = redirect_uris.clone();
        unique.dedup();
        let name = match raw.client_name.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return Err(MetadataError::metadata(format!(
                    "client_name is at most {MAX_NAME_CHARS} characters"
                )));
            }
            Some(name) if name.chars().any(misleading_char) => {
                return Err(MetadataError::metadata(
                    "client_name has no control, invisible or direction-changing characters",
                ));
            }
            Some(name) => Some(name.to_owned()),
        };
        let client_uri = match raw.client_uri.as_deref() {
            None | Some("") => None,
            Some(uri) => Some(check_client_uri(uri)?),
        };
        let grant_types = match raw.grant_types {
            None => GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect(),
            Some(grants) => check_grants(grants)?,
        };
        if let Some(types) = &raw.response_types
            && types.iter().any(|t| t != "code")
        {
            return Err(MetadataError::metadata(
                "response_types: only \"code\" (the authorization-code flow) is supported",
            ));
        }
        let auth_method = match raw.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(method) => AuthMethod::parse(method).ok_or_else(|| {
                MetadataError::metadata(format!(
                    "token_endpoint_auth_method {method:?} is not supported: use none, client_secret_basic or client_secret_post"
                ))
            })?,
        };
        Ok(Self {
            name,
            client_uri,
            redirect_uris: unique,
            grant_types,
            auth_method,
        })
    }
}

/// Characters that would let a name read differently on the consent page
/// than it is: controls, zero-width and bidirectional overrides.
fn misleading_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn check_client_uri(uri: &str) -> Result<String, MetadataError> {
    let bad =
        || MetadataError::metadata("client_uri must be an https URL (at most 2000 characters)");
    if uri.len() > MAX_CLIENT_URI_LEN {
        return Err(bad());
    }
    let url = url::Url::parse(uri).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host().is_none() || !url.username().is_empty() {
        return Err(bad());
    }
    Ok(uri.to_owned())
}

fn check_grants(grants: Vec<String>) -> Result<Vec<String>, MetadataError> {
    let mut out: Vec<String> = Vec::new();
    for grant in grants {
        if grant == "client_credentials" {
            return Err(MetadataError::metadata(
                "grant_types: client_credentials needs no registration; a machine client uses a Keysmith key as its client secret",
            ));
        }
        if !GRANT_TYPES.contains(&grant.as_str()) {
            return Err(MetadataError::metadata(format!(
                "grant_types: {grant:?} is not supported; use authorization_code and refresh_token"
            )));
        }
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    if !out.iter().any(|g| g == "authorization_code") {
        return Err(MetadataError::metadata(
            "grant_types must include authorization_code",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(redirects: &[&str]) -> RawMetadata {
        RawMetadata {
            redirect_uris: Some(redirects.iter().map(|s| (*s).to_owned()).collect()),
            ..RawMetadata::default()
        }
    }

    #[test]
    fn defaults_are_a_confidential_client_of_both_code_grants() {
        let parsed = ClientMetadata::parse(raw(&["https://app.example.com/cb"])).expect("ok");
        assert_eq!(parsed.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(parsed.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(parsed.name, None);
    }

    #[test]
    fn refusals_name_the_rfc_7591_error() {
        let no_redirect = ClientMetadata::parse(RawMetadata::default()).expect_err("refused");
        assert_eq!(no_redirect.code, "invalid_redirect_uri");
        let js = ClientMetadata::parse(raw(&["javascript:alert(1)"])).expect_err("refused");
        assert_eq!(js.code, "invalid_redirect_uri");
        let many: Vec<String> = (0..11).map(|i| format!("https://e.com/{i}")).collect();
        let too_many = RawMetadata {
            redirect_uris: Some(many),
            ..RawMetadata::default()
        };
        assert_eq!(
            ClientMetadata::parse(too_many).expect_err("refused").code,
            "invalid_redirect_uri"
        );
        for bad in [
            RawMetadata {
                grant_types: Some(vec!["client_credentials".into()]),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                grant_types: Some(vec!["implicit".into()]),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                grant_types: Some(vec!["refresh_token".into()]),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                response_types: Some(vec!["token".into()]),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                client_name: Some("x".repeat(101)),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                client_name: Some("evil\u{202e}name".into()),
                ..raw(&["https://e.com/cb"])
            },
            RawMetadata {
                client_uri: Some("javascript:alert(1)".into()),
                ..raw(&["https://e.com/cb"])
            },
        ] {
            let err = ClientMetadata::parse(bad.clone()).expect_err("refused");
            assert_eq!(err.code, "invalid_client_metadata", "{bad:?}");
        }
    }
}
