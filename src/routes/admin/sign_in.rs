//! `/admin/sign-in` and `/admin/sign-out`.

use std::net::SocketAddr;

use askama::Template;
use axum::{
    Form,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    auth::{Admin, SESSION_KEY, SignedIn, same_origin},
    page::{PageError, render},
};
use crate::{domain::users, error::AppError, state::AppState};
use keysmith_verify::{random_id, timestamp};

/// Failed attempts allowed per account, and per client address, in the window.
const MAX_PER_ACCOUNT: i64 = 5;
const MAX_PER_ADDRESS: i64 = 20;
const WINDOW_SECS: i64 = 15 * 60;

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
struct SignInPage<'a> {
    error: Option<&'a str>,
    email: &'a str,
}

pub async fn form() -> Response {
    render(&SignInPage {
        error: None,
        email: "",
    })
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

/// The one answer for an unknown account, a wrong password and a throttled
/// attempt alike, so none of them tells which accounts exist.
fn refused(email: &str) -> Response {
    (StatusCode::UNAUTHORIZED, render(&SignInPage { error: Some("That email and password do not match an account, or there were too many attempts. Try again in a few minutes."), email })).into_response()
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
    let email = credentials.email.trim().to_ascii_lowercase();
    let account = format!("account:{email}");
    let address = format!("address:{}", peer.ip());
    let now = timestamp::to_unix(state.now());
    let throttled = recent_failures(&state, &account, now).await? >= MAX_PER_ACCOUNT
        || recent_failures(&state, &address, now).await? >= MAX_PER_ADDRESS;
    let user = users::find_by_email(state.pool(), &email).await?;
    // Hash even when throttled or unknown: every refusal costs the same time.
    let matches = users::verify_password(
        credentials.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let Some(user) = user.filter(|_| matches && !throttled) else {
        for subject in [&account, &address] {
            sqlx::query("INSERT INTO login_failures (subject, at) VALUES ($1, $2)")
                .bind(subject)
                .bind(now)
                .execute(state.pool())
                .await
                .map_err(AppError::from)?;
        }
        tracing::info!(throttled, "sign-in refused");
        return Ok(refused(&email));
    };
    sqlx::query("DELETE FROM login_failures WHERE subject = $1")
        .bind(&account)
        .execute(state.pool())
        .await
        .map_err(AppError::from)?;
    // A new session id at sign-in: a planted id is worthless.
    session
        .cycle_id()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    let signed_in = SignedIn {
        user_id: user.id,
        email: user.email,
        superadmin: user.is_superadmin != 0,
        csrf: random_id(32),
        signed_in_at: now,
    };
    session
        .insert(SESSION_KEY, signed_in)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    Ok(Redirect::to("/admin/api-keys").into_response())
}

async fn recent_failures(state: &AppState, subject: &str, now: i64) -> Result<i64, AppError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE subject = $1 AND at > $2")
            .bind(subject)
            .bind(now - WINDOW_SECS)
            .fetch_one(state.pool())
            .await?;
    Ok(n)
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
