//! `{issuer}/authorize`: a person of the tenant (owner or admin, signed in
//! through the admin sign-in, TOTP as the tenant requires) approves or
//! denies a client's request. GET checks the request and shows the consent
//! page; POST (CSRF token, single-use form token) answers it. Served under
//! the admin UI's sessions and security headers, with `form-action` opened
//! to the client's redirect origin only (browsers apply it to the redirect
//! that follows the form).

mod answer;
mod page;
pub mod request;

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use tower_sessions::Session;

use super::issuer_tenant;
use crate::{
    domain::UnixTime,
    routes::admin::{auth::Admin, page::notice, return_to},
    state::AppState,
};
use request::Refusal;

pub use answer::answer;

/// The form parameters of a query string or a form body, in order.
pub(crate) fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// A refusal as the browser gets it: a page, or back to the client.
pub(crate) fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => notice(StatusCode::BAD_REQUEST, "Cannot connect", message),
        Refusal::Redirect(to) => Redirect::to(&to).into_response(),
        Refusal::Server(err) => crate::routes::admin::page::PageError(err).into_response(),
    }
}

/// Whether the admin extractor refused because nobody is signed in (as
/// opposed to a password change or TOTP set-up the account must do first).
fn signed_out(rejection: &Response) -> bool {
    rejection
        .headers()
        .get(header::LOCATION)
        .is_some_and(|to| to == "/admin/sign-in")
}

/// Nobody signed in: a navigation from another site first comes back here
/// from this origin (its SameSite=Strict session cookie was not sent);
/// otherwise, to the sign-in page, which returns here after.
fn to_sign_in(slug: &str, query: &str, headers: &HeaderMap) -> Response {
    let here = format!("/oauth/{slug}/authorize?{query}");
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| matches!(site, "cross-site" | "same-site"));
    if cross_site {
        return page::continue_here(&here);
    }
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/admin/sign-in?next={next}")).into_response()
}

/// Signed in, but the account must first change its password or set up
/// TOTP (`rejection` leads there): the request is remembered in the session,
/// so the person comes back to it afterwards rather than to the admin home.
async fn detour(
    state: &AppState,
    session: &Session,
    (slug, query): (&str, &str),
    rejection: Response,
) -> Response {
    if rejection.headers().contains_key(header::LOCATION) {
        let here = format!("/oauth/{slug}/authorize?{query}");
        if let Err(err) = return_to::remember(session, &here, UnixTime::from(state.now())).await {
            return err.into_response();
        }
    }
    rejection
}

/// `GET {issuer}/authorize`: checks the request, then shows the consent page
/// to a person who may approve it.
pub async fn show(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    session: Session,
    admin: Result<Admin, Response>,
) -> Response {
    let tenant = match issuer_tenant(&state, &slug).await {
        Ok(tenant) => tenant,
        Err(_) => {
            return notice(
                StatusCode::NOT_FOUND,
                "Not Found",
                "There is no such tenant.".into(),
            );
        }
    };
    let query = query.unwrap_or_default();
    let request = match request::check(&state, &tenant, &pairs(query.as_bytes())).await {
        Ok(request) => request,
        Err(refusal) => return refused(refusal),
    };
    let admin = match admin {
        Ok(admin) => admin,
        Err(rejection) if signed_out(&rejection) => return to_sign_in(&slug, &query, &headers),
        Err(rejection) => return detour(&state, &session, (&slug, &query), rejection).await,
    };
    match page::consent(&state, &admin, &tenant, &request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}
