//! The OpenAPI document (`/api/openapi.json`): the paths each route declares,
//! then the conventions every operation shares, applied once here rather
//! than repeated on each route: a description on every response, the
//! `Error` body on every error answer, the answers any authenticated
//! operation can give (401, 403, 503), and the `Idempotency-Key` header on
//! the tenant API's POSTs.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder,
        path::{Operation, ParameterBuilder, ParameterIn},
        security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme},
    },
};

use super::{
    admins, audit, audit_events, forward_auth, invitations, keys, notifications, oauth_clients,
    oauth_grants, secret_scanning, service_users, tenants, verify, webhooks,
};
use crate::{error::ErrorBody, routes::oauth};

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
        verify::verify, audit_events::create, forward_auth::check, forward_auth::check_post, tenants::get, tenants::update,
        secret_scanning::github, secret_scanning::gitlab_types, secret_scanning::gitlab_revoke,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::send_test, webhooks::enable, webhooks::rotate_secret, webhooks::deliveries,
        oauth::metadata::document, oauth::token::token, oauth::introspect::introspect, oauth::revoke::revoke,
        oauth::register::register,
        oauth_clients::create, oauth_clients::list, oauth_clients::delete,
        oauth_grants::list, oauth_grants::revoke,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &Conventions)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "management_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
                "proxy_token",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "Keysmith-Proxy-Token",
                    "the value of KEYSMITH_FORWARD_AUTH_TOKEN; without it set, only loopback peers are answered",
                ))),
            );
    }
}

/// What an authenticated operation can answer whatever it does.
const AUTHENTICATED: [(&str, &str); 3] = [
    (
        "401",
        "no management key, or one that is invalid, expired or revoked",
    ),
    ("403", "the key lacks the scope this operation needs"),
    (
        "503",
        "the database is unreachable: nothing was done (fail closed)",
    ),
];

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut Document) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.starts_with("/api/v1/tenants/{tenant}/")
                && let Some(post) = item.post.as_mut()
            {
                post.parameters
                    .get_or_insert_with(Vec::new)
                    .push(idempotency_key().into());
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                apply(operation);
            }
        }
    }
}

/// The optional header that makes a retried POST safe (see routes/api/idempotency.rs).
fn idempotency_key() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .description(Some(
            "Optional, 1-255 visible ASCII characters (a UUID). A retry with the same key, credential \
             and request within 24 h gets the first answer again (header `Idempotent-Replayed: true`) \
             instead of running twice; the same key with another request is 422; while the first is \
             still running, 409.",
        ))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build()
}

fn apply(operation: &mut Operation) {
    let authenticated = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let responses = &mut operation.responses.responses;
    if authenticated {
        for (status, description) in AUTHENTICATED {
            responses.entry(status.to_owned()).or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .build()
                    .into()
            });
        }
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if response.description.is_empty() {
            response.description = default_description(status).to_owned();
        }
        let error = status.starts_with('4') || status.starts_with('5');
        if error && response.content.is_empty() {
            response.content.insert(
                "application/json".to_owned(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build()
                    .into(),
            );
        }
    }
}

/// A response's description when its route gives none.
fn default_description(status: &str) -> &'static str {
    status
        .parse::<u16>()
        .ok()
        .and_then(|code| http::StatusCode::from_u16(code).ok())
        .and_then(|code| code.canonical_reason())
        .unwrap_or("response")
}
