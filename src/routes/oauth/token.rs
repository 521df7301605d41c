//! `POST {issuer}/token`. Client credentials: the client is a key
//! (`client_id` its id, `client_secret` the key); the token is bound to one
//! resource (RFC 8707) and narrowed to the scopes asked. The
//! authorization-code and refresh-token grants are `code_grant`'s.

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    OAuthError, code_grant,
    error::no_store,
    form::{self, OAuthForm},
};
use crate::{
    domain::oauth::{
        MAX_LIVE_TOKENS_PER_KEY,
        tokens::{self, TokenRequest},
    },
    state::AppState,
};
use keysmith_verify::{
    resource::canonical_resource,
    scope::{self, ScopeSet},
};

#[utoipa::path(post, operation_id = "oauth_token", path = "/oauth/{tenant}/token", tag = "oauth",
    params(("tenant" = String, Path, description = "the issuer's tenant")),
    request_body(content = super::schema::TokenForm, content_type = "application/x-www-form-urlencoded",
        description = "client credentials: the key's id and the key, as `Authorization: Basic` or `client_id` + `client_secret`"),
    responses((status = 200, body = super::schema::TokenAnswer, description = "an access token bound to `resource`; `Cache-Control: no-store`"),
              (status = 400, body = super::schema::OAuthErrorBody, description = "`invalid_request`, `invalid_target`, `invalid_scope`, `unsupported_grant_type`, `unauthorized_client`"),
              (status = 401, body = super::schema::OAuthErrorBody, description = "`invalid_client`: one answer for every failed client authentication"),
              (status = 404, body = super::schema::OAuthErrorBody, description = "no such tenant"),
              (status = 429, body = super::schema::OAuthErrorBody, description = "the key already holds its maximum of live tokens"),
              (status = 503, body = super::schema::OAuthErrorBody, description = "the database is unreachable (fail closed)")))]
pub async fn token(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    match form.get("grant_type") {
        Some("client_credentials") => {}
        Some("authorization_code") => {
            let tenant = super::issuer_tenant(&state, &slug).await?;
            return code_grant::authorization_code(&state, &tenant, &headers, &form).await;
        }
        Some("refresh_token") => {
            let tenant = super::issuer_tenant(&state, &slug).await?;
            return code_grant::refresh_token(&state, &tenant, &headers, &form).await;
        }
        Some(_) => {
            return Err(OAuthError::unsupported_grant_type(
                "use authorization_code, refresh_token or client_credentials",
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    }
    let (tenant, client) = form::issuer_and_client(&state, &slug, &headers, &form).await?;
    if !client.key.scopes.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "a management key (keysmith:* scopes) cannot obtain access tokens; use a service user's key",
        ));
    }
    let resource = form.get("resource").ok_or_else(|| {
        OAuthError::invalid_target(
            "resource is required: the URL of the MCP server the token is for (RFC 8707)",
        )
    })?;
    let resource =
        canonical_resource(resource).map_err(|err| OAuthError::invalid_target(err.to_string()))?;
    let reach = scope::key_reach(&client.key.allowed);
    let scopes = match form.get("scope") {
        None => None,
        Some(raw) => {
            let asked =
                ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            asked
                .within(&reach)
                .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            Some(asked).filter(|asked| !asked.is_empty())
        }
    };
    let request = TokenRequest {
        key: &client.key,
        prefix: &client.prefix,
        resource: &resource,
        scopes: scopes.as_ref(),
        grant_type: "client_credentials",
        lifetime: crate::domain::oauth::access_token_lifetime(&tenant),
    };
    let now = state.now();
    let issued = tokens::issue(state.pool(), &state.peppers, request, now)
        .await?
        .map_err(|tokens::Refused::TooManyLive| {
            OAuthError::too_many_tokens(format!(
                "this key already holds {MAX_LIVE_TOKENS_PER_KEY} live access tokens: reuse one until it expires"
            ))
        })?;
    let granted = scopes.unwrap_or_else(|| ScopeSet::of_key(reach));
    let body = json!({
        "access_token": issued.token.expose(),
        "token_type": "Bearer",
        "expires_in": (issued.expires_at - now).whole_seconds().max(0),
        "scope": granted.to_string(),
    });
    Ok((no_store(), Json(body)).into_response())
}
