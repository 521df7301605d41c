//! The error policy, in one place.
//!
//! Every failure a user can cause maps to a status and a stable snake_case
//! `code` with a message that says what to fix. Anything else is a 500 with a
//! generic message; the cause goes to the log (never to the client), because
//! internal errors can carry SQL, paths or other details worth hiding.
//! Another tenant's object is always `NotFound`, never `Forbidden`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed request: bad JSON, wrong content type.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// Well-formed but invalid input.
    #[error("{0}")]
    Validation(String),
    /// Missing, malformed, unknown, expired or revoked credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated but not allowed (a viewer trying to rotate).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Absent, or belongs to another tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The state of the object forbids the action (rotating a revoked key).
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the {0} byte limit")]
    PayloadTooLarge(usize),
    #[error("too many attempts, try again later")]
    TooManyRequests,
    /// Too many requests of this caller at once: `429` with `Retry-After: 1`.
    #[error("{0}")]
    Busy(&'static str),
    /// A dependency (the database) is unreachable: fail closed.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Every error answer of the API: `{"error": {"code", "message"}}` (the
/// OpenAPI document names it `Error`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// A stable, machine-readable code: `validation_failed`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `payload_too_large`,
    /// `too_many_requests`, `unavailable`, `internal`, or a request-specific
    /// one for `400`.
    code: &'a str,
    /// What went wrong, for people.
    message: String,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests | Self::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(code, _) => code,
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::TooManyRequests | Self::Busy(_) => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(err.into())
            }
            other => Self::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

/// The domain's refusals, mapped to HTTP here and nowhere else.
impl From<DomainError> for AppError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Malformed(code, message) => Self::BadRequest(code, message),
            DomainError::Validation(message) => Self::Validation(message),
            DomainError::NotFound(what) => Self::NotFound(what),
            DomainError::Conflict(message) => Self::Conflict(message),
            DomainError::TooManyAttempts => Self::TooManyRequests,
            DomainError::Unavailable(cause) => Self::Unavailable(cause),
            DomainError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<keysmith_verify::BackendError> for AppError {
    fn from(err: keysmith_verify::BackendError) -> Self {
        match err {
            keysmith_verify::BackendError::Database(err) => Self::from(err),
            unavailable => Self::Unavailable(unavailable.into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(error = ?cause, "dependency unavailable"),
            _ => {}
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Busy(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
