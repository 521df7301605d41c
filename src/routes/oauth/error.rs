//! OAuth error answers (RFC 6749 §5.2): `{"error", "error_description"}`,
//! never cached. The server's own failures map here once, as in `error.rs`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::error::AppError;

#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// One answer for every failed client authentication (unknown client,
    /// wrong secret, revoked or expired key), so it tells an attacker nothing.
    pub fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    /// RFC 6749 §5.2: the code or refresh token is invalid, expired,
    /// spent, or issued to another client or redirect URI.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// RFC 8707 §2: the `resource` is missing, malformed or not allowed.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub fn too_many_tokens(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request",
            description,
        )
    }

    /// RFC 7591 §3.2.2: `invalid_redirect_uri` or `invalid_client_metadata`.
    pub fn invalid_registration(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the request body is larger than {} KiB", limit / 1024),
        )
    }

    /// The tenant accepts no dynamic registration.
    pub fn registration_closed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "dynamic client registration is closed for this tenant: ask one of its admins to \
             pre-register the client, or identify it by a client ID metadata document (an https client_id)",
        )
    }

    /// Too many registrations from one address or for one tenant lately,
    /// or the tenant's cap on stored clients reached.
    pub fn too_many_registrations(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request",
            description,
        )
    }
}

impl From<AppError> for OAuthError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            AppError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "dependency unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the authorization server is unavailable; retry shortly",
                )
            }
            other => {
                tracing::error!(error = ?other, "oauth request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
            }
        }
    }
}

impl From<keysmith_verify::BackendError> for OAuthError {
    fn from(err: keysmith_verify::BackendError) -> Self {
        AppError::from(err).into()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, no_store(), Json(body)).into_response();
        let headers = response.headers_mut();
        match self.status {
            // RFC 6749 §5.2: a 401 names the scheme the client may authenticate with.
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"keysmith\""),
                );
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            _ => {}
        }
        response
    }
}

/// Token, introspection and error answers are never cached (RFC 6749 §5.1).
pub fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}
