//! The per-tenant OAuth 2.1 authorization server, issuer
//! `{KEYSMITH_PUBLIC_URL}/oauth/{tenant}`: discovery (RFC 8414 and OIDC,
//! every URL form clients use), the token endpoint (client credentials),
//! introspection (RFC 7662) and revocation (RFC 7009), and the
//! authorization-code flow: `authorize` (the consent page, mounted with the
//! admin UI's sessions) and the code and refresh grants (`code_grant`).

pub mod authorize;
mod code_grant;
mod error;
mod form;
pub(crate) mod introspect;
pub(crate) mod metadata;
pub(crate) mod register;
pub(crate) mod revoke;
pub(crate) mod schema;
pub(crate) mod token;

use axum::{
    Router,
    routing::{get, post},
};

pub use error::OAuthError;

use crate::{
    domain::tenants::{self, Tenant},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server/oauth/{tenant}",
            get(metadata::document),
        )
        .route(
            "/.well-known/openid-configuration/oauth/{tenant}",
            get(metadata::document),
        )
        .route(
            "/oauth/{tenant}/.well-known/oauth-authorization-server",
            get(metadata::document),
        )
        .route(
            "/oauth/{tenant}/.well-known/openid-configuration",
            get(metadata::document),
        )
        .route("/oauth/{tenant}/token", post(token::token))
        .route("/oauth/{tenant}/introspect", post(introspect::introspect))
        .route("/oauth/{tenant}/revoke", post(revoke::revoke))
        .route(
            "/oauth/{tenant}/register",
            post(register::register).layer(axum::extract::DefaultBodyLimit::max(
                register::MAX_BODY_BYTES,
            )),
        )
}

/// The issuer's tenant: an unknown or disabled one is `404`.
pub(crate) async fn issuer_tenant(state: &AppState, slug: &str) -> Result<Tenant, OAuthError> {
    match tenants::find_by_slug(state.pool(), slug).await? {
        Some(tenant) if tenant.disabled_at.is_none() => Ok(tenant),
        _ => Err(crate::error::AppError::NotFound("tenant").into()),
    }
}
