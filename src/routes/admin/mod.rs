//! The admin UI: server-rendered pages under `/admin`, sessions in the
//! database, CSRF tokens on every form, strict security headers.

mod account_page;
mod accounts_page;
pub mod auth;
pub mod client_addr;
mod form_token;
mod key_actions;
mod key_detail;
mod key_form;
mod keys_page;
mod limits_form;
mod nav;
mod oauth_clients_page;
mod oauth_grants_page;
pub(crate) mod page;
mod policy_page;
pub(crate) mod return_to;
mod service_user_actions;
mod service_user_page;
pub(crate) mod service_user_picker;
mod service_users_page;
mod setup_page;
mod sign_in;
mod sign_in_totp;
mod tenants_page;
mod totp_page;
mod webhooks_page;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use crate::state::AppState;

const CSS: &str = include_str!("../../../static/app.css");
const COPY_JS: &str = include_str!("../../../static/copy.js");
const CONFIRM_JS: &str = include_str!("../../../static/confirm.js");

pub fn router(state: &AppState) -> Router<AppState> {
    let https = state.config.is_https();
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        // `__Host-` binds the cookie to this exact origin, but needs `Secure`.
        .with_name(if https { "__Host-keysmith" } else { "keysmith" })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(Duration::minutes(30)));
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/api-keys") }))
        .route("/admin", get(|| async { Redirect::to("/admin/api-keys") }))
        .route(
            "/admin/setup",
            get(setup_page::form).post(setup_page::submit),
        )
        .route("/admin/sign-in", get(sign_in::form).post(sign_in::submit))
        .route(
            "/admin/sign-in/totp",
            get(sign_in_totp::form).post(sign_in_totp::submit),
        )
        .route("/admin/sign-out", post(sign_in::sign_out))
        .route(
            "/admin/api-keys",
            get(keys_page::list).post(key_actions::create),
        )
        .route("/admin/api-keys/{id}", get(key_detail::show))
        .route("/admin/api-keys/{id}/rotate", post(key_actions::rotate))
        .route("/admin/api-keys/{id}/revoke", post(key_actions::revoke))
        .route("/admin/api-keys/{id}/limits", post(key_actions::set_limits))
        .route(
            "/admin/service-users",
            get(service_users_page::list).post(service_users_page::create),
        )
        .route(
            "/admin/service-users/{id}",
            get(service_user_page::show).post(service_user_actions::update),
        )
        .route(
            "/admin/service-users/{id}/disable",
            post(service_user_actions::disable),
        )
        .route(
            "/admin/service-users/{id}/enable",
            post(service_user_actions::enable),
        )
        .route(
            "/admin/webhooks",
            get(webhooks_page::list).post(webhooks_page::create),
        )
        .route("/admin/webhooks/{id}/delete", post(webhooks_page::delete))
        .route("/admin/webhooks/{id}/test", post(webhooks_page::send_test))
        .route("/admin/webhooks/{id}/enable", post(webhooks_page::enable))
        .route(
            "/admin/policy",
            get(policy_page::show).post(policy_page::update),
        )
        .route(
            "/admin/tenants",
            get(tenants_page::show).post(tenants_page::create_tenant),
        )
        .route("/admin/tenants/admins", post(tenants_page::add_admin))
        .route(
            "/admin/tenants/totp",
            post(tenants_page::set_totp_requirement),
        )
        .route("/admin/accounts", get(accounts_page::show))
        .route("/admin/accounts/status", post(accounts_page::set_status))
        .route(
            "/admin/accounts/password",
            post(accounts_page::reset_password),
        )
        .route("/admin/accounts/role", post(accounts_page::set_role))
        .route(
            "/admin/accounts/totp-reset",
            post(accounts_page::reset_totp),
        )
        .route(
            "/admin/account/totp",
            get(totp_page::show).post(totp_page::confirm),
        )
        .route("/admin/account", get(account_page::show))
        .route(
            "/admin/account/invitations",
            post(account_page::answer_invitation),
        )
        .route(
            "/admin/account/password",
            post(account_page::change_password),
        )
        .route(
            "/admin/account/sign-out-everywhere",
            post(account_page::sign_out_everywhere),
        )
        .route(
            "/admin/oauth-clients",
            get(oauth_clients_page::list).post(oauth_clients_page::create),
        )
        .route(
            "/admin/oauth-clients/{client_id}/delete",
            post(oauth_clients_page::delete),
        )
        .route("/admin/oauth-grants", get(oauth_grants_page::list))
        .route(
            "/admin/oauth-grants/{id}/revoke",
            post(oauth_grants_page::revoke),
        )
        // The OAuth consent page: a person signs in here to answer it.
        .route(
            "/oauth/{tenant}/authorize",
            get(crate::routes::oauth::authorize::show)
                .post(crate::routes::oauth::authorize::answer),
        )
        .layer(axum::middleware::map_response(move |response: Response| {
            security_headers(response, https)
        }))
        .layer(sessions)
        .route("/static/copy.js", static_file("text/javascript", COPY_JS))
        .route(
            "/static/confirm.js",
            static_file("text/javascript", CONFIRM_JS),
        )
        .route("/static/app.css", static_file("text/css", CSS))
}

/// A file compiled into the binary, cacheable for an hour.
fn static_file(
    content_type: &'static str,
    body: &'static str,
) -> axum::routing::MethodRouter<AppState> {
    get(move || async move {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
            .into_response()
    })
}

/// Headers every admin page carries. No inline script anywhere, so the CSP
/// can forbid it; pages are never cached (they may show secrets once).
async fn security_headers(mut response: Response, https: bool) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    // A page may narrow-open its own policy (the OAuth consent page lets its
    // form lead to the client's redirect origin); every other gets this one.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(
            headers,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        );
    }
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // `same-origin`, not `no-referrer`: the latter makes browsers send
    // `Origin: null` on our own form posts, which the CSRF check must refuse.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, "no-store");
    if https {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    response
}
