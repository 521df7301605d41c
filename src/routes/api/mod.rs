//! The JSON API, `/api/v1`, and its OpenAPI document.

mod admins;
mod audit;
pub mod auth;
pub mod extract;
mod invitations;
pub mod keys;
pub mod model;
mod notifications;
mod secret_scanning;
mod service_users;
mod tenants;
mod verify;
mod webhooks;

use axum::{
    Json, Router,
    routing::{get, post},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

use crate::state::AppState;

/// On every answer that carries a secret shown once (a key, a webhook's
/// signing secret): no cache along the way may keep a copy.
pub(crate) const NO_STORE: [(http::HeaderName, &str); 1] =
    [(http::header::CACHE_CONTROL, "no-store")];

pub fn router() -> Router<AppState> {
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
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries));
    Router::new()
        .route(
            "/api/v1/tenants/{tenant}",
            get(tenants::get).patch(tenants::update),
        )
        .nest("/api/v1/tenants/{tenant}", tenant)
        .route("/api/v1/verify", post(verify::verify))
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
            get(|| async { Json(ApiDoc::openapi()) }),
        )
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Keysmith API", description = "Service API keys: issue, rotate, revoke, verify. Authenticate with a management key (scope `keysmith:admin`) as `Authorization: Bearer <key>`."),
    paths(
        service_users::create, service_users::list, service_users::get,
        service_users::update, service_users::disable, service_users::enable,
        admins::list, admins::set_role, admins::remove,
        invitations::create, invitations::list, invitations::withdraw,
        keys::create, keys::list, keys::get, keys::update_limits, keys::rotate, keys::revoke,
        audit::list, audit::usage, notifications::list,
        verify::verify, tenants::get, tenants::update, secret_scanning::github,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::send_test, webhooks::enable, webhooks::rotate_secret, webhooks::deliveries,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "management_key",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}
