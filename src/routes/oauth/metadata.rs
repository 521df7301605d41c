//! Authorization server metadata (RFC 8414), served at every URL a client
//! may derive from the issuer: path-inserted and appended, under both
//! `oauth-authorization-server` and `openid-configuration` (clients differ
//! in where they look).

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};

use crate::{
    domain::{oauth, tenancy::tenants},
    error::{AppError, AppResult},
    state::AppState,
};

#[utoipa::path(get, operation_id = "oauth_metadata", path = "/.well-known/oauth-authorization-server/oauth/{tenant}", tag = "oauth",
    params(("tenant" = String, Path, description = "the tenant's slug: the issuer is `{KEYSMITH_PUBLIC_URL}/oauth/{tenant}`")),
    responses((status = 200, body = Object, description = "RFC 8414 metadata; the same at `/oauth/{tenant}/.well-known/oauth-authorization-server` and both `openid-configuration` forms"),
              (status = 404, description = "no such tenant")))]
pub async fn document(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let tenant = tenants::find_by_slug(state.pool(), &slug)
        .await?
        .filter(|t| t.disabled_at.is_none())
        .ok_or(AppError::NotFound("tenant"))?;
    let issuer = oauth::issuer(&state.config.public_url, &tenant.slug);
    Ok(Json(metadata(&issuer, tenant.accepts_metadata_documents())))
}

/// The document for `issuer`; `documents`: whether its tenant accepts
/// clients identified by a client ID metadata document (tenant policy).
pub fn metadata(issuer: &str, documents: bool) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "client_id_metadata_document_supported": documents,
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": oauth::SCOPES_SUPPORTED,
    })
}
