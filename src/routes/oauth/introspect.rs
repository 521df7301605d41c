//! `POST {issuer}/introspect` (RFC 7662): for resource servers that do not
//! read the Keysmith database, with a management key of the issuer's tenant
//! (scope `keysmith:verify` or `keysmith:admin`). Anything but a live access
//! token of this tenant is `{"active": false}`.

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{OAuthError, error::no_store, form::OAuthForm};
use crate::{
    domain::{UnixTime, oauth},
    error::AppError,
    routes::api::auth::VerifyCaller,
    state::AppState,
};

#[utoipa::path(post, operation_id = "oauth_introspect", path = "/oauth/{tenant}/introspect", tag = "oauth",
    params(("tenant" = String, Path, description = "the issuer's tenant, the management key's own")),
    request_body(content = super::schema::TokenParameter, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = super::schema::Introspection, description = "RFC 7662; `Cache-Control: no-store`"),
              (status = 400, body = super::schema::OAuthErrorBody, description = "`invalid_request`: no token"),
              (status = 404, body = super::schema::OAuthErrorBody, description = "another tenant's issuer")),
    security(("management_key" = [])))]
pub async fn introspect(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    caller: VerifyCaller,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    // Another tenant's issuer is as if it did not exist.
    if caller.0.tenant_slug != slug {
        return Err(AppError::NotFound("tenant").into());
    }
    let presented = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let verdict = state
        .verifier
        .verify(presented.trim(), Some(&caller.0.tenant_id), None)
        .await?;
    let body = match verdict {
        Ok(key) => match &key.token {
            Some(token) => json!({
                "active": true,
                "scope": token.scope,
                // The client the token was issued to, as it named itself
                // at the token endpoint (client credentials: the key's id).
                "client_id": token.client_id,
                "token_type": "Bearer",
                "exp": UnixTime::from(key.valid_until).secs(),
                "sub": key.service_user_id,
                "username": key.service_user_name,
                "aud": token.resource,
                "iss": oauth::issuer(&state.config.public_url, &key.tenant_slug),
            }),
            // A key is not a token: introspection speaks of tokens only.
            None => json!({"active": false}),
        },
        Err(_) => json!({"active": false}),
    };
    Ok((no_store(), Json(body)).into_response())
}
