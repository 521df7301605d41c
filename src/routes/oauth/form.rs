//! The form body of the token, introspection and revocation endpoints, and
//! client authentication with a key as the client secret.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, header},
};
use base64::Engine as _;

use super::error::OAuthError;
use crate::{domain::tenants::Tenant, state::AppState};
use keysmith_verify::{ApiKey, VerifiedKey};

/// `application/x-www-form-urlencoded` parameters, each at most once
/// (RFC 6749 §3.2); an empty value counts as absent (§3.1).
#[derive(Debug)]
pub struct OAuthForm(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(OAuthError::invalid_request(
                "send the parameters as Content-Type: application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| OAuthError::invalid_request("unreadable or oversized request body"))?;
        let mut params: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(&body) {
            if params.iter().any(|(seen, _)| *seen == name) {
                return Err(if name == "resource" {
                    OAuthError::invalid_target("give exactly one resource")
                } else {
                    OAuthError::invalid_request(format!("the parameter `{name}` appears twice"))
                });
            }
            params.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self(params))
    }
}

impl OAuthForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// An authenticated client: its key, verified for the issuer's tenant.
#[derive(Debug)]
pub struct Client {
    pub key: VerifiedKey,
    /// The prefix the key was presented with (its tokens carry it too).
    pub prefix: String,
}

/// The issuer's tenant and the client that authenticated to it.
pub async fn issuer_and_client(
    state: &AppState,
    slug: &str,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<(Tenant, Client), OAuthError> {
    let tenant = super::issuer_tenant(state, slug).await?;
    let client = authenticate(state, &tenant, headers, form).await?;
    Ok((tenant, client))
}

/// Authenticates the client by `client_secret_basic` or
/// `client_secret_post`: `client_id` is a key's id, `client_secret` the
/// key, verified on the key's own path (HMAC, constant-time compare, the
/// same work for an unknown id). Every failure is the same `invalid_client`.
async fn authenticate(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Client, OAuthError> {
    let (client_id, secret) = presented(headers, form)?;
    // Not a key at all (a token included): refused without database work,
    // as a malformed key is everywhere (the checksum is public).
    let key = ApiKey::parse(secret.trim()).map_err(|_| OAuthError::invalid_client())?;
    let verdict = state
        .verifier
        .verify(key.expose(), Some(tenant.id.as_str()), None)
        .await?;
    match verdict {
        Ok(verified) if verified.key_id == client_id => Ok(Client {
            key: verified,
            prefix: key.prefix().to_owned(),
        }),
        Ok(_) => Err(OAuthError::invalid_client()),
        Err(refusal) => {
            tracing::info!(code = refusal.code.as_str(), "oauth client refused");
            Err(OAuthError::invalid_client())
        }
    }
}

/// The client of an authorization-code or refresh-token request, as
/// presented: its `client_id` and, for a confidential client, the secret
/// (`client_secret_basic` or `client_secret_post`, exactly one of them).
/// A public client sends `client_id` alone. Check the secret with
/// `OAuthClient::authenticate` once the registry resolved the id.
pub(crate) fn presented_client(
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<(String, Option<String>), OAuthError> {
    let has_basic = headers.contains_key(header::AUTHORIZATION);
    if has_basic || form.get("client_secret").is_some() {
        let (id, secret) = presented(headers, form)?;
        return Ok((id, Some(secret)));
    }
    let id = form
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    Ok((id.to_owned(), None))
}

/// The `client_id` and `client_secret`, from exactly one method.
fn presented(headers: &HeaderMap, form: &OAuthForm) -> Result<(String, String), OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim());
    let posted = form.get("client_secret");
    match (basic, posted) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "authenticate the client one way: Authorization: Basic or client_secret, not both",
        )),
        (Some(credentials), None) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or_else(OAuthError::invalid_client)?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(OAuthError::invalid_client)?;
            // RFC 6749 §2.3.1: both are form-urlencoded inside the header.
            let (id, secret) = (form_decoded(id), form_decoded(secret));
            if form.get("client_id").is_some_and(|posted| posted != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok((id, secret))
        }
        (None, Some(secret)) => {
            let id = form
                .get("client_id")
                .ok_or_else(OAuthError::invalid_client)?;
            Ok((id.to_owned(), secret.to_owned()))
        }
        (None, None) => Err(OAuthError::invalid_client()),
    }
}

fn form_decoded(raw: &str) -> String {
    url::form_urlencoded::parse(format!("v={raw}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}
