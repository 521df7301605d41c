//! `/admin/sign-in/totp`: the second sign-in step for accounts with TOTP.
//! The password was right; until a code (or a recovery code) is too, the
//! session holds only a pending sign-in that no other page accepts.

use crate::domain::UnixTime;
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
    auth::{SignedIn, same_origin},
    client_addr::client_address,
    page::{PageError, render},
    sign_in::establish,
};
use crate::{
    domain::{sign_in_throttle as throttle, totp},
    error::AppError,
    state::AppState,
};

const PENDING_KEY: &str = "pending_totp";
/// Where to go after the second step (see `sign_in::safe_next`).
const PENDING_NEXT_KEY: &str = "pending_totp_next";
/// The second step must follow the first within this.
const PENDING_SECS: i64 = 5 * 60;

#[derive(Template)]
#[template(path = "admin/sign_in_totp.html")]
struct CodePage<'a> {
    error: Option<&'a str>,
}

fn session_error(e: tower_sessions::session::Error) -> PageError {
    PageError(AppError::Internal(anyhow::anyhow!("session: {e}")))
}

/// Remembers a pending sign-in and sends the browser to the second step.
pub async fn await_code(
    session: &Session,
    user: SignedIn,
    next: &str,
) -> Result<Response, PageError> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(PENDING_KEY, user)
        .await
        .map_err(session_error)?;
    session
        .insert(PENDING_NEXT_KEY, next.to_owned())
        .await
        .map_err(session_error)?;
    Ok(Redirect::to("/admin/sign-in/totp").into_response())
}

async fn pending(state: &AppState, session: &Session) -> Result<Option<SignedIn>, PageError> {
    let user: Option<SignedIn> = session.get(PENDING_KEY).await.map_err(session_error)?;
    let now = UnixTime::from(state.now());
    Ok(user.filter(|u| (now - u.signed_in_at).whole_seconds() <= PENDING_SECS))
}

pub async fn form(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    if pending(&state, &session).await?.is_none() {
        return Ok(Redirect::to("/admin/sign-in").into_response());
    }
    Ok(render(&CodePage { error: None }))
}

/// Never echoed back into the page.
#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Err(PageError(AppError::Forbidden("cross-site sign-in refused")));
    }
    let Some(user) = pending(&state, &session).await? else {
        return Ok(Redirect::to("/admin/sign-in").into_response());
    };
    let refused = |message| {
        (
            StatusCode::UNAUTHORIZED,
            render(&CodePage {
                error: Some(message),
            }),
        )
            .into_response()
    };
    if form.code.len() > 64 {
        return Ok(refused("That code is not right."));
    }
    let now = state.now();
    let client = client_address(peer.ip(), &headers, &state.config.trusted_proxies);
    // Throttled exactly like the password step, on its own account subject.
    let subjects = [
        (format!("totp:{}", user.user_id), throttle::ACCOUNT),
        (throttle::address_subject(client), throttle::ADDRESS),
    ];
    let mut within_limits = true;
    for (subject, limits) in &subjects {
        within_limits &= throttle::record_attempt(state.pool(), subject, *limits, now).await?;
    }
    if !within_limits {
        tracing::info!("second sign-in step refused: too many attempts");
        return Ok(refused(
            "That code is not right, or there were too many attempts. Try again in a few minutes.",
        ));
    }
    if !totp::verify(state.pool(), &state.peppers, &user.user_id, &form.code, now).await? {
        tracing::info!("second sign-in step refused");
        return Ok(refused(
            "That code is not right, or there were too many attempts. Try again in a few minutes.",
        ));
    }
    for (subject, _) in &subjects {
        throttle::take_back(state.pool(), subject, now).await?;
    }
    session
        .remove::<SignedIn>(PENDING_KEY)
        .await
        .map_err(session_error)?;
    let next: Option<String> = session
        .remove(PENDING_NEXT_KEY)
        .await
        .map_err(session_error)?;
    establish(&session, user, next.as_deref().unwrap_or_default()).await
}
