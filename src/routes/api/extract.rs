//! A JSON extractor whose rejections speak the API's error format.

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Largest request body accepted (JSON API and forms); `app` applies it to
/// every route, and the rejection here names it.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonSyntaxError(_) => AppError::BadRequest(
                    "malformed_json",
                    "the request body is not valid JSON".into(),
                ),
                // serde's message names the field (`unknown field `hash``) without echoing values.
                JsonRejection::JsonDataError(err) => AppError::validation(format!(
                    "invalid request body: {}",
                    data_error_message(&err.body_text())
                )),
                JsonRejection::MissingJsonContentType(_) => AppError::BadRequest(
                    "unsupported_media_type",
                    "send the body as Content-Type: application/json".into(),
                ),
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    AppError::PayloadTooLarge(BODY_LIMIT)
                }
                other => AppError::BadRequest("bad_request", other.body_text()),
            }),
        }
    }
}

/// axum prefixes serde's message with its own text; keep serde's part.
fn data_error_message(text: &str) -> &str {
    text.split_once(": ").map_or(text, |(_, rest)| rest)
}

/// Query-string parameters, with rejections in the API's error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|err| {
                AppError::BadRequest(
                    "invalid_query",
                    data_error_message(&err.body_text()).to_owned(),
                )
            })
    }
}

/// A JSON body that may be absent altogether (`POST …/rotate` with no options).
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|err| {
        if err.is_syntax() || err.is_eof() {
            AppError::BadRequest(
                "malformed_json",
                "the request body is not valid JSON".into(),
            )
        } else {
            AppError::validation(format!("invalid request body: {err}"))
        }
    })
}

/// Tells `"field": null` (present, `Some(None)`) from an absent field (`None`)
/// in a partial edit.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
