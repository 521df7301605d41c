//! The token endpoint's `authorization_code` and `refresh_token` grants:
//! the client is one of the registry's (a public client sends its
//! `client_id`, a confidential one authenticates), and every refusal of
//! the code or refresh token is `invalid_grant`.

use axum::{
    Json,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    OAuthError,
    error::no_store,
    form::{self, OAuthForm},
};
use crate::{
    domain::{
        oauth::{
            MAX_LIVE_TOKENS_PER_KEY,
            clients::OAuthClient,
            codes::{self, Redemption},
            exchange::{self, GrantRefused, Refresh, TokenPair},
        },
        tenants::Tenant,
    },
    state::AppState,
};
use keysmith_verify::{OAuthToken, TokenKind, resource::canonical_resource, scope::ScopeSet};

/// The client of the request, authenticated as it registered.
async fn client(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &OAuthForm,
    grant_type: &str,
) -> Result<OAuthClient, OAuthError> {
    let (client_id, secret) = form::presented_client(headers, form)?;
    let client = state
        .oauth_clients
        .resolve(state.pool(), &tenant.id, &client_id)
        .await?
        .map_err(|_| OAuthError::invalid_client())?;
    if !client.authenticate(&state.peppers, secret.as_deref()) {
        return Err(OAuthError::invalid_client());
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client did not register for the {grant_type} grant"
        )));
    }
    Ok(client)
}

/// `resource`, when the request names one, in canonical form.
fn resource(form: &OAuthForm) -> Result<Option<String>, OAuthError> {
    form.get("resource")
        .map(|raw| canonical_resource(raw).map_err(|e| OAuthError::invalid_target(e.to_string())))
        .transpose()
}

fn answer(state: &AppState, pair: Result<TokenPair, GrantRefused>) -> Result<Response, OAuthError> {
    let pair = pair.map_err(|refused| match refused {
        GrantRefused::Invalid(why) => OAuthError::invalid_grant(why),
        GrantRefused::BeyondGrant => {
            OAuthError::invalid_scope("the scope goes beyond what the grant allows")
        }
        GrantRefused::TooManyLive => OAuthError::too_many_tokens(format!(
            "this grant already holds {MAX_LIVE_TOKENS_PER_KEY} live access tokens: reuse one until it expires"
        )),
    })?;
    let body = json!({
        "access_token": pair.access.expose(),
        "token_type": "Bearer",
        "expires_in": (pair.access_expires_at - state.now()).whole_seconds().max(0),
        "refresh_token": pair.refresh.expose(),
        "scope": pair.scope,
    });
    Ok((no_store(), Json(body)).into_response())
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Response, OAuthError> {
    let client = client(state, tenant, headers, form, "authorization_code").await?;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let resource = resource(form)?;
    let redemption = Redemption {
        code,
        client_id: &client.client_id,
        redirect_uri: form.get("redirect_uri"),
        resource: resource.as_deref(),
        code_verifier: form.get("code_verifier"),
    };
    let pair = codes::redeem(
        state.pool(),
        &state.peppers,
        tenant,
        redemption,
        state.now(),
    )
    .await?;
    answer(state, pair)
}

/// `grant_type=refresh_token`: a new pair, the presented token spent.
pub async fn refresh_token(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Response, OAuthError> {
    let client = client(state, tenant, headers, form, "refresh_token").await?;
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let token = OAuthToken::parse(presented.trim())
        .ok()
        .filter(|t| t.kind() == TokenKind::Refresh)
        .ok_or_else(|| OAuthError::invalid_grant("not a refresh token"))?;
    let resource = resource(form)?;
    let scopes = form
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_scope(e.to_string()))?
        .filter(|s| !s.is_empty());
    let refresh = Refresh {
        token: &token,
        client_id: &client.client_id,
        resource: resource.as_deref(),
        scopes: scopes.as_ref(),
    };
    let pair =
        exchange::refresh(state.pool(), &state.peppers, tenant, refresh, state.now()).await?;
    answer(state, pair)
}
