//! The JSON API, `/api/v1`, and its OpenAPI document.

mod admins;
mod audit;
mod audit_events;
pub mod auth;
pub mod extract;
pub mod forward_auth;
mod idempotency;
mod invitations;
pub mod keys;
pub mod model;
mod notifications;
pub(crate) mod oauth_clients;
mod oauth_grants;
pub mod openapi;
mod secret_scanning;
pub mod service_users;
pub mod tenants;
mod verify;
mod webhooks;

use axum::{
    Json, Router,
    routing::{any, get, post},
};
use utoipa::OpenApi;

use crate::state::AppState;

/// On every answer that carries a secret shown once (a key, a webhook's
/// signing secret): no cache along the way may keep a copy.
pub(crate) const NO_STORE: [(http::HeaderName, &str); 1] =
    [(http::header::CACHE_CONTROL, "no-store")];

pub fn router(state: &AppState) -> Router<AppState> {
    let tenant = Router::new()
        .route(
            "/service-users",
            post(service_users::create).get(service_users::list),
        )
        .route(
            "/service-users/{id}",
            get(service_users::get).patch(service_users::update),
        )
        .route("/service-users/{id}/disable", post(service_users::disable))
        .route("/service-users/{id}/enable", post(service_users::enable))
        .route("/admins", get(admins::list))
        .route(
            "/admins/{email}",
            axum::routing::put(admins::set_role).delete(admins::remove),
        )
        .route(
            "/invitations",
            post(invitations::create).get(invitations::list),
        )
        .route(
            "/invitations/{email}",
            axum::routing::delete(invitations::withdraw),
        )
        .route("/keys", post(keys::create).get(keys::list))
        .route("/keys/{id}", get(keys::get).patch(keys::update_limits))
        .route("/keys/{id}/rotate", post(keys::rotate))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/keys/{id}/audit", get(audit::list))
        .route("/keys/{id}/usage", get(audit::usage))
        .route("/keys/{id}/notifications", get(notifications::list))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/webhooks/{id}/test", post(webhooks::send_test))
        .route("/webhooks/{id}/enable", post(webhooks::enable))
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/oauth/clients",
            post(oauth_clients::create).get(oauth_clients::list),
        )
        .route(
            "/oauth/clients/{client_id}",
            axum::routing::delete(oauth_clients::delete),
        )
        .route("/oauth/grants", get(oauth_grants::list))
        .route(
            "/oauth/grants/{id}",
            axum::routing::delete(oauth_grants::revoke),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ));
    Router::new()
        .route(
            "/api/v1/tenants/{tenant}",
            get(tenants::get).patch(tenants::update),
        )
        .nest("/api/v1/tenants/{tenant}", tenant)
        .route("/api/v1/verify", post(verify::verify))
        .route("/api/v1/audit-events", post(audit_events::create))
        .route("/api/v1/forward-auth", any(forward_auth::tenant_required))
        .route("/api/v1/forward-auth/{tenant}", any(forward_auth::check))
        .route(
            "/api/v1/forward-auth/{tenant}/{*path}",
            any(forward_auth::check_with_path),
        )
        .route(
            "/api/v1/secret-scanning/github",
            post(secret_scanning::github),
        )
        .route(
            "/v1/revocable_token_types",
            get(secret_scanning::gitlab_types),
        )
        .route("/v1/revoke_tokens", post(secret_scanning::gitlab_revoke))
        .route(
            "/api/openapi.json",
            get(|| async { Json(openapi::ApiDoc::openapi()) }),
        )
}
