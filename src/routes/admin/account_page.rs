//! `/admin/account`: every admin changes their own password, can end all
//! their sessions, and answers the invitations tenants sent their email.
//! After a reset this is the only page the account reaches.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::Admin,
    nav::{Nav, Section},
    page::{PageError, render},
    return_to,
};
use crate::{
    domain::{
        UnixTime,
        people::accounts::{self, Password},
        people::invitations,
        people::lifecycle,
    },
    error::AppError,
    state::AppState,
};

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage<'a> {
    nav: Nav,
    csrf: &'a str,
    must_change: bool,
    changed: bool,
    error: Option<String>,
    invitations: Vec<invitations::Received>,
    /// An authorization request waits for this password change.
    returning: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct Shown {
    #[serde(default)]
    changed: Option<String>,
}

async fn page(
    state: &AppState,
    admin: &Admin,
    changed: bool,
    error: Option<String>,
) -> Result<Response, PageError> {
    let must_change = lifecycle::state(state.pool(), &admin.user.user_id)
        .await?
        .is_some_and(|a| a.must_change_password != 0);
    let memberships = admin.memberships(state).await?;
    let invitations = invitations::received(state.pool(), &admin.user.email, state.now()).await?;
    let returning = return_to::peek(&admin.session, UnixTime::from(state.now()))
        .await?
        .is_some();
    Ok(render(&AccountPage {
        nav: Nav::new(admin, Section::Account, None, &memberships),
        csrf: &admin.user.csrf,
        must_change,
        changed,
        error,
        invitations,
        returning,
    }))
}

pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Query(shown): Query<Shown>,
) -> Result<Response, PageError> {
    page(&state, &admin, shown.changed.is_some(), None).await
}

/// Never echoed back into the page.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    mut admin: Admin,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&headers, &form.csrf)?;
    let changed = async {
        if form.new != form.confirm {
            return Err(AppError::validation("the two new passwords differ"));
        }
        if form.new == form.current {
            return Err(AppError::validation(
                "choose a new password different from the current one",
            ));
        }
        if form.current.len() > Password::MAX_BYTES {
            return Err(AppError::validation("the current password is not right"));
        }
        let new = Password::parse(form.new.clone())?;
        // Signed-in admins wait for a hashing slot rather than get a 503.
        let slot = state
            .password_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        let stored = lifecycle::password_hash(state.pool(), &admin.user.user_id).await?;
        if !accounts::verify_password(form.current.clone(), Some(stored), slot).await? {
            return Err(AppError::validation("the current password is not right"));
        }
        Ok(lifecycle::set_own_password(
            state.pool(),
            &admin.user.user_id,
            new,
            &admin.actor(),
            state.now(),
        )
        .await?)
    }
    .await;
    match changed {
        Ok(epoch) => {
            admin.renew(epoch).await?;
            let now = UnixTime::from(state.now());
            // A sign-in for an authorization request made this detour: back to it.
            let next = return_to::take(&admin.session, now).await?;
            Ok(Redirect::to(next.as_deref().unwrap_or("/admin/account?changed=1")).into_response())
        }
        Err(err @ AppError::Validation(_)) => {
            let status = err.status();
            Ok((
                status,
                page(&state, &admin, false, Some(err.to_string())).await?,
            )
                .into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Ends every session of this account, this one included.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&headers, &form.csrf)?;
    lifecycle::end_sessions(
        state.pool(),
        &admin.user.user_id,
        &admin.actor(),
        state.now(),
    )
    .await?;
    let _ = admin.session.flush().await;
    Ok(Redirect::to("/admin/sign-in").into_response())
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    csrf: String,
    /// The inviting tenant's slug.
    tenant: String,
    /// `accept` or `decline`.
    answer: String,
}

/// Accepts or declines a tenant's invitation. Accepting into a tenant that
/// requires a second factor leads to its setup on the next page, as for any
/// member: the person chose to join.
pub async fn answer_invitation(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<AnswerForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&headers, &form.csrf)?;
    let accept = match form.answer.as_str() {
        "accept" => true,
        "decline" => false,
        _ => return Err(PageError(AppError::validation("answer accept or decline"))),
    };
    invitations::answer(
        state.pool(),
        &form.tenant,
        &admin.user.user_id,
        &admin.user.email,
        accept,
        state.now(),
    )
    .await?;
    Ok(Redirect::to("/admin/account").into_response())
}
