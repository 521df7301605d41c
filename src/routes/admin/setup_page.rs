//! `/admin/setup`: the first superadmin, created from the link `keysmith
//! serve` prints while the database has no admin.

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::same_origin,
    page::{notice, render},
};
use crate::{
    domain::DomainError,
    domain::{Email, people::accounts::Password},
    state::AppState,
};

#[derive(askama::Template)]
#[template(path = "admin/setup.html")]
struct SetupPage<'a> {
    token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct Link {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    email: String,
    password: String,
    password_again: String,
}

fn gone() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "Setup link not valid",
        "This setup link was used already, has expired, or belongs to an earlier start of the server. \
         Sign in, or restart `keysmith serve` on an empty database for a new link."
            .to_owned(),
    )
}

pub async fn form(State(state): State<AppState>, Query(link): Query<Link>) -> Response {
    if !state.first_run.is_valid(&link.token, state.now()) {
        return gone();
    }
    render(&SetupPage {
        token: &link.token,
        email: "",
        error: None,
    })
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    if !same_origin(&headers) {
        return notice(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "cross-site request refused".to_owned(),
        );
    }
    if !state.first_run.is_valid(&form.token, state.now()) {
        return gone();
    }
    let refuse = |message: String| {
        let page = render(&SetupPage {
            token: &form.token,
            email: &form.email,
            error: Some(&message),
        });
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(err) => return refuse(err.to_string().replace("owner_email", "email")),
    };
    if form.password != form.password_again {
        return refuse("the two passwords differ".to_owned());
    }
    let password = match Password::parse(form.password) {
        Ok(password) => password,
        Err(err) => return refuse(err.to_string()),
    };
    match state
        .first_run
        .complete(state.pool(), &form.token, &email, password, state.now())
        .await
    {
        Ok(_) => Redirect::to("/admin/sign-in?welcome=1").into_response(),
        Err(DomainError::NotFound(_)) => gone(),
        Err(err) => super::page::PageError(err.into()).into_response(),
    }
}
