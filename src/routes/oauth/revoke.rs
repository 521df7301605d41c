//! `POST {issuer}/revoke` (RFC 7009): a client revokes one of its own
//! tokens. A key (client credentials) revokes its access tokens; a client
//! of the authorization-code flow revokes an access token, or a refresh
//! token, which ends its whole grant (§2.1). The answer is `200` whether or
//! not there was such a token, so it reveals nothing about other clients'.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    OAuthError,
    error::no_store,
    form::{self, OAuthForm},
};
use crate::{
    domain::oauth::{exchange, tokens},
    state::AppState,
};
use keysmith_verify::{ApiKey, OAuthToken, TokenKind};

#[utoipa::path(post, operation_id = "oauth_revoke", path = "/oauth/{tenant}/revoke", tag = "oauth",
    params(("tenant" = String, Path, description = "the issuer's tenant")),
    request_body(content = super::schema::TokenParameter, content_type = "application/x-www-form-urlencoded",
        description = "authenticated as at the token endpoint (the token's own client)"),
    responses((status = 200, description = "revoked if it was this client's token; the same answer otherwise (RFC 7009)"),
              (status = 400, body = super::schema::OAuthErrorBody, description = "`invalid_request`: no token"),
              (status = 401, body = super::schema::OAuthErrorBody, description = "`invalid_client`"),
              (status = 404, body = super::schema::OAuthErrorBody, description = "no such tenant")))]
pub async fn revoke(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    // A client of the authorization-code flow (registry) is not a key.
    let (client_id, secret) = form::presented_client(&headers, &form)?;
    if secret
        .as_deref()
        .is_none_or(|s| ApiKey::parse(s.trim()).is_err())
    {
        let tenant = super::issuer_tenant(&state, &slug).await?;
        let client = state
            .oauth_clients
            .resolve(state.pool(), &tenant.id, &client_id)
            .await?
            .ok()
            .filter(|c| c.authenticate(&state.peppers, secret.as_deref()))
            .ok_or_else(OAuthError::invalid_client)?;
        let presented = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        if let Ok(token) = OAuthToken::parse(presented.trim()) {
            exchange::revoke_by_client(
                state.pool(),
                &state.peppers,
                &tenant,
                &client.client_id,
                &token,
                state.now(),
            )
            .await?;
        }
        return Ok((StatusCode::OK, no_store()).into_response());
    }
    let (tenant, client) = form::issuer_and_client(&state, &slug, &headers, &form).await?;
    let presented = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if let Ok(token) = OAuthToken::parse(presented.trim())
        && token.kind() == TokenKind::Access
    {
        tokens::revoke(
            state.pool(),
            tenant.id.as_str(),
            &client.key.key_id,
            token.token_id(),
            state.now(),
        )
        .await?;
    }
    Ok((StatusCode::OK, no_store()).into_response())
}
