//! `/admin/sign-in` and `/admin/sign-out`.

use crate::domain::UnixTime;
use std::{net::SocketAddr, sync::atomic::Ordering};

use askama::Template;
use axum::{
    Form,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    auth::{Admin, SESSION_KEY, SignedIn, same_origin},
    client_addr::client_address,
    page::{PageError, render},
};
use crate::domain::random;
use crate::{
    domain::{
        sign_in_throttle as throttle, totp,
        users::{self, Password},
    },
    error::AppError,
    state::AppState,
};

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
struct SignInPage<'a> {
    error: Option<&'a str>,
    email: &'a str,
    /// Where to go once signed in (an OAuth authorization request), if safe.
    next: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `next` if it is a path of this server that may follow a sign-in: only
/// an OAuth authorization request (no other host, no scheme, no `//`), so
/// the sign-in page is no open redirect.
pub fn safe_next(next: &str) -> Option<&str> {
    let path = next.split('?').next().unwrap_or_default();
    let safe = next.starts_with("/oauth/")
        && path.ends_with("/authorize")
        && path.split('/').count() == 4
        && !next.contains('\\')
        // A header value as it is (a `Location`): nothing to escape or split.
        && next.bytes().all(|b| b.is_ascii_graphic())
        && next.len() <= 8192;
    safe.then_some(next)
}

pub async fn form(axum::extract::Query(query): axum::extract::Query<NextQuery>) -> Response {
    render(&SignInPage {
        error: None,
        email: "",
        next: safe_next(&query.next).unwrap_or_default(),
    })
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// The one answer for an unknown account, a wrong password and a throttled
/// attempt alike, so none of them tells which accounts exist.
pub(super) fn refused(email: &str, next: &str) -> Response {
    (StatusCode::UNAUTHORIZED, render(&SignInPage { error: Some("That email and password do not match an account, or there were too many attempts. Try again in a few minutes."), email, next })).into_response()
}

/// Longest email accepted (RFC 5321 path limit); checked before any work.
const MAX_EMAIL_BYTES: usize = 254;

/// All password slots are busy: come back in a moment. Nothing was checked
/// and the attempt was not counted.
fn busy(email: &str, next: &str) -> Response {
    let page = render(&SignInPage {
        error: Some("The server is busy signing people in. Try again in a moment."),
        email,
        next,
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        page,
    )
        .into_response()
}

/// Input too large to be a real email or password, refused unhashed.
fn oversized() -> Response {
    let page = render(&SignInPage {
        error: Some("An email has at most 254 characters and a password at most 1024 bytes."),
        email: "",
        next: "",
    });
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Err(PageError(AppError::Forbidden("cross-site sign-in refused")));
    }
    if credentials.email.len() > MAX_EMAIL_BYTES || credentials.password.len() > Password::MAX_BYTES
    {
        return Ok(oversized());
    }
    let email = credentials.email.trim().to_ascii_lowercase();
    let next = safe_next(&credentials.next).unwrap_or_default().to_owned();
    let now = state.now();
    let client = client_address(peer.ip(), &headers, &state.config.trusted_proxies);
    let subjects = [
        (throttle::account_subject(&email), throttle::ACCOUNT),
        (throttle::address_subject(client), throttle::ADDRESS),
    ];
    // Counted before the password is looked at, each in one atomic statement:
    // a burst cannot slip extra guesses past the limit. Both are counted
    // even when the first is locked, so probing other accounts costs too.
    let mut within_limits = true;
    for (subject, limits) in &subjects {
        within_limits &= throttle::record_attempt(state.pool(), subject, *limits, now).await?;
    }
    if !within_limits {
        tracing::info!("sign-in refused: too many attempts");
        return Ok(refused(&email, &next));
    }
    let Ok(slot) = state.password_slots.clone().try_acquire_owned() else {
        // Not checked, so not counted: a busy server must not lock anyone out.
        for (subject, _) in &subjects {
            throttle::take_back(state.pool(), subject, now).await?;
        }
        tracing::info!("sign-in refused: every password slot busy");
        return Ok(busy(&email, &next));
    };
    let user = users::find_by_email(state.pool(), &email).await?;
    state
        .metrics
        .password_checks
        .fetch_add(1, Ordering::Relaxed);
    // Unknown accounts are checked against a dummy hash: same time either way.
    let matches = users::verify_password(
        credentials.password,
        user.as_ref().map(|u| u.password_hash.clone()),
        slot,
    )
    .await?;
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!("sign-in refused");
        return Ok(refused(&email, &next));
    };
    // Only this request's own attempts are taken back, never other requests'.
    for (subject, _) in &subjects {
        throttle::take_back(state.pool(), subject, now).await?;
    }
    let signed_in = SignedIn {
        user_id: user.id,
        email: user.email,
        superadmin: user.is_superadmin != 0,
        csrf: random::base62(32),
        signed_in_at: UnixTime::from(now),
        epoch: user.session_epoch,
    };
    if totp::status(state.pool(), &signed_in.user_id)
        .await?
        .enabled
    {
        // Half signed in: only the second step's page accepts this session.
        return super::sign_in_totp::await_code(&session, signed_in, &next).await;
    }
    establish(&session, signed_in, &next).await
}

/// Signs `user` in on `session`, under a new session id (a planted id is
/// worthless), and goes on to `next` (checked by [`safe_next`]) or the keys.
pub async fn establish(
    session: &Session,
    user: SignedIn,
    next: &str,
) -> Result<Response, PageError> {
    let session_error = |e: tower_sessions::session::Error| {
        PageError(AppError::Internal(anyhow::anyhow!("session: {e}")))
    };
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(SESSION_KEY, user)
        .await
        .map_err(session_error)?;
    Ok(Redirect::to(safe_next(next).unwrap_or("/admin/api-keys")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Ends the session on the server: the old cookie is worthless afterwards.
pub async fn sign_out(
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&headers, &form.csrf)?;
    admin
        .session
        .flush()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    Ok(Redirect::to("/admin/sign-in").into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_authorization_requests_follow_a_sign_in() {
        let good = "/oauth/acme/authorize?client_id=x&state=a%20b";
        assert_eq!(safe_next(good), Some(good));
        for bad in [
            "",
            "https://evil.example/oauth/acme/authorize",
            "//evil.example/oauth/acme/authorize",
            "/oauth/acme/token",
            "/oauth/acme/x/authorize",
            "/admin/api-keys",
            "/oauth/acme/authorize?x=\r\nSet-Cookie:a",
            "/oauth/acme/authorize?x=é",
            "/oauth\\evil/authorize",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
