//! HTML rendering and the admin pages' error page.

use crate::domain::UnixTime;
use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use crate::error::AppError;

/// A moment as admins read it: `2026-11-30 01:30:08 UTC`.
pub fn when(at: UnixTime) -> String {
    let iso = at.rfc3339();
    format!("{} UTC", iso.replace('T', " ").trim_end_matches('Z'))
}

/// A refusal in the words of the admin's forms: the domain's checks name
/// the API's fields (`owner_email`), the person reads the form's labels.
pub fn in_form_words(message: &str) -> String {
    [("owner_email", "the owner email")]
        .iter()
        .fold(message.to_owned(), |m, (api, label)| m.replace(api, label))
}

/// Renders a template, or a 500 whose cause goes to the log.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

/// An `AppError` shown as a page, with the same status and message policy as the API.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error = ?self.0, "admin page failed");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        notice(status, title, self.0.to_string())
    }
}

/// A page that only says something (an error, or that there is nothing here yet).
pub fn notice(status: StatusCode, title: &str, message: String) -> Response {
    (status, render(&ErrorPage { title, message })).into_response()
}
