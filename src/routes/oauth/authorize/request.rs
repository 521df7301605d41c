//! The authorization request (RFC 6749 §4.1.1 with OAuth 2.1's PKCE, RFC
//! 8707's `resource`), checked in the order that keeps it from becoming an
//! open redirect: until the client and its redirect URI are known, every
//! error is a page; after, errors go back to the client's redirect URI with
//! `state` and `iss` (RFC 9207).

use url::Url;

use crate::{
    domain::{
        oauth::{
            self,
            clients::{ClientRefused, OAuthClient},
            pkce,
        },
        tenants::Tenant,
    },
    error::AppError,
    state::AppState,
};
use keysmith_verify::{resource::canonical_resource, scope::ScopeSet};

/// The parameters that travel from the authorization URL through the
/// consent form, in the order they are written back.
pub const CARRIED: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

/// Longest `state` echoed back (it travels in a URL).
const MAX_STATE: usize = 1024;

/// An authorization request whose every parameter was checked.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// Canonical (RFC 8707).
    pub resource: String,
    /// What the client asked for (all three kinds when it named none).
    pub scopes: ScopeSet,
    /// The parameters as received, to carry through the consent form.
    pub carried: Vec<(String, String)>,
}

/// Why a request is refused, and where the refusal goes.
#[derive(Debug)]
pub enum Refusal {
    /// Shown on a page: the redirect URI is not (yet) trusted.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect(String),
    /// The server failed.
    Server(AppError),
}

impl From<AppError> for Refusal {
    fn from(err: AppError) -> Self {
        Self::Server(err)
    }
}

/// The redirect to the client with `params`, plus `state` and `iss`.
pub fn redirect_to(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    params: &[(&str, &str)],
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        // Only URIs the registry matched reach here; they parse.
        return redirect_uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    url.into()
}

/// An error redirect (RFC 6749 §4.1.2.1).
fn error_redirect(
    client_redirect: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Refusal {
    Refusal::Redirect(redirect_to(
        client_redirect,
        state,
        issuer,
        &[("error", error), ("error_description", description)],
    ))
}

/// Reads `params` (each at most once) into a checked request.
pub async fn check(
    state: &AppState,
    tenant: &Tenant,
    params: &[(String, String)],
) -> Result<AuthorizeRequest, Refusal> {
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in params {
        if seen.contains(&name.as_str()) {
            return Err(Refusal::Page(format!(
                "The parameter `{name}` appears twice in the authorization request."
            )));
        }
        seen.push(name);
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let client_id = get("client_id").ok_or_else(|| {
        Refusal::Page("The authorization request names no client (client_id).".into())
    })?;
    let client = match state
        .oauth_clients
        .resolve(state.pool(), &tenant.id, client_id)
        .await?
    {
        Ok(client) => client,
        Err(ClientRefused::Unknown) => {
            return Err(Refusal::Page(format!(
                "The application is not known to {} (unknown client_id).",
                tenant.name
            )));
        }
        Err(other) => {
            return Err(Refusal::Page(format!(
                "The application cannot connect: {other}."
            )));
        }
    };
    let redirect_uri = match get("redirect_uri") {
        Some(uri) => uri.to_owned(),
        // RFC 6749 §3.1.2.3: optional only when exactly one is registered.
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(Refusal::Page(
                "The authorization request names no redirect_uri.".into(),
            ));
        }
    };
    if !client.redirect_allowed(&redirect_uri) {
        return Err(Refusal::Page(
            "The redirect_uri is not one this application registered; nothing was sent to it."
                .into(),
        ));
    }
    // From here on the redirect URI is the client's own: errors go there.
    let client_state = get("state");
    if client_state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(Refusal::Page("The state parameter is too long.".into()));
    }
    let issuer = oauth::issuer(&state.config.public_url, &tenant.slug);
    let fail = |error: &str, description: &str| {
        error_redirect(&redirect_uri, client_state, &issuer, error, description)
    };
    if get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(fail(
            "unauthorized_client",
            "this client did not register for the authorization_code grant",
        ));
    }
    let Some(challenge) = get("code_challenge") else {
        return Err(fail(
            "invalid_request",
            "code_challenge is required (PKCE, S256)",
        ));
    };
    if get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not supported)",
        ));
    }
    if !pkce::valid_challenge(challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    let Some(resource) = get("resource") else {
        return Err(fail(
            "invalid_target",
            "resource is required: the URL of the MCP server the token is for (RFC 8707)",
        ));
    };
    let resource =
        canonical_resource(resource).map_err(|err| fail("invalid_target", &err.to_string()))?;
    let scopes = match get("scope") {
        None => ScopeSet::parse(&oauth::SCOPES_SUPPORTED.join(" ")),
        Some(raw) => ScopeSet::parse(raw),
    }
    .map_err(|err| fail("invalid_scope", &err.to_string()))?;
    if scopes.is_empty() {
        return Err(fail("invalid_scope", "ask for at least one scope"));
    }
    let carried = CARRIED
        .iter()
        .filter_map(|name| get(name).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect();
    Ok(AuthorizeRequest {
        redirect_uri: redirect_uri.clone(),
        state: client_state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        resource,
        scopes,
        carried,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::redirect_to;

    #[test]
    fn redirects_keep_the_clients_query_and_add_state_and_iss() {
        let to = redirect_to(
            "http://127.0.0.1:3000/cb?x=1",
            Some("a b&c"),
            "https://ks.example/oauth/acme",
            &[("code", "abc")],
        );
        assert_eq!(
            to,
            "http://127.0.0.1:3000/cb?x=1&code=abc&state=a+b%26c&iss=https%3A%2F%2Fks.example%2Foauth%2Facme"
        );
    }
}
