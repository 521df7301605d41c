//! The one way the layer (and forward-auth) refuses a request: a
//! [`Refused`] says what to answer and why, and is rendered once, either as
//! the layer answers (JSON-RPC errors where the client speaks it) or as
//! forward-auth does (`{"error": …}` only: a proxy's client may not speak
//! JSON-RPC). Every stage builds its refusal here; none builds a response.

use std::borrow::Cow;

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::body::LayerBody;
use crate::outcome::VerifyCode;

/// A request the layer answers itself: the answer, and the reason it is
/// audited and counted by.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    status: StatusCode,
    reason: VerifyCode,
    shape: Shape,
    /// `WWW-Authenticate`: the challenge of a `401`, or a step-up `403`.
    challenge: Option<String>,
    /// Seconds until a limit admits the key again (`429` only).
    retry_after: Option<u64>,
}

#[derive(Debug, Clone)]
enum Shape {
    /// The API's error shape, `{"error": {"code", "message"}}`.
    Plain {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// A JSON-RPC error answering the request's id, so MCP clients show a
    /// call error rather than a transport failure.
    JsonRpc {
        id: Value,
        code: i64,
        message: Cow<'static, str>,
    },
    /// A body given whole (a [`super::RequestGuard`]'s).
    Given(Value),
}

impl Refused {
    /// `{"error": {"code", "message"}}` with `status`.
    pub(crate) fn plain(
        status: StatusCode,
        reason: VerifyCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(
            status,
            reason,
            Shape::Plain {
                code,
                message: message.into(),
            },
        )
    }

    /// A JSON-RPC error answering `id`, with `status`.
    pub(crate) fn json_rpc(
        status: StatusCode,
        reason: VerifyCode,
        id: Value,
        code: i64,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        let message = message.into();
        Self::new(status, reason, Shape::JsonRpc { id, code, message })
    }

    /// `body` as given, with `status`.
    pub(crate) fn given(status: StatusCode, reason: VerifyCode, body: Value) -> Self {
        Self::new(status, reason, Shape::Given(body))
    }

    fn new(status: StatusCode, reason: VerifyCode, shape: Shape) -> Self {
        Self {
            status,
            reason,
            shape,
            challenge: None,
            retry_after: None,
        }
    }

    /// With a `WWW-Authenticate` challenge (left out if it is not a valid
    /// header value).
    pub(crate) fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// With `Retry-After` (and the seconds in the body, where the client
    /// reads them).
    pub(crate) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The audit reason and the metric's outcome.
    pub(crate) fn reason(&self) -> VerifyCode {
        self.reason
    }

    /// The layer's answer.
    pub(crate) fn into_response<B>(self) -> Response<LayerBody<B>> {
        let body = match &self.shape {
            Shape::Plain { code, message } => plain_body(code, message, self.retry_after),
            Shape::JsonRpc { id, code, message } => {
                let mut error = json!({"code": code, "message": message});
                if let Some(retry_after) = self.retry_after {
                    error["data"] =
                        json!({"limit": self.reason.as_str(), "retry_after": retry_after});
                }
                json!({"jsonrpc": "2.0", "id": id, "error": error})
            }
            Shape::Given(body) => body.clone(),
        };
        self.render(&body)
    }

    /// Forward-auth's answer: always `{"error": …}`. A JSON-RPC refusal
    /// keeps its message; its code is the limit it names, else the reason
    /// a proxy's client can act on (the limiter being down, or a request
    /// it cannot read).
    pub(crate) fn into_plain_response<B>(self) -> Response<LayerBody<B>> {
        let body = match &self.shape {
            Shape::Plain { code, message } => plain_body(code, message, self.retry_after),
            Shape::JsonRpc { message, .. } => {
                let code = match self.reason {
                    _ if self.retry_after.is_some() => self.reason.as_str(),
                    VerifyCode::LimitsUnavailable => self.reason.as_str(),
                    _ => VerifyCode::BadRequest.as_str(),
                };
                plain_body(code, message, self.retry_after)
            }
            Shape::Given(body) => body.clone(),
        };
        self.render(&body)
    }

    fn render<B>(self, body: &Value) -> Response<LayerBody<B>> {
        let mut response = json_response(self.status, body);
        let headers = response.headers_mut();
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn plain_body(code: &str, message: &str, retry_after: Option<u64>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(retry_after) = retry_after {
        error["retry_after"] = json!(retry_after);
    }
    json!({"error": error})
}

/// The bytes of a JSON-RPC error answering `id` (also what replaces an
/// answer the listing filter cannot read).
pub(crate) fn json_rpc_error(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

fn json_response<B>(status: StatusCode, body: &Value) -> Response<LayerBody<B>> {
    let mut response = Response::new(LayerBody::own(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    use super::*;

    async fn answer(response: Response<LayerBody<Empty<Bytes>>>) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("own body")
            .to_bytes();
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    fn limited() -> Refused {
        Refused::json_rpc(
            StatusCode::TOO_MANY_REQUESTS,
            VerifyCode::RateLimited,
            json!(7),
            -32029,
            "slow down",
        )
        .with_retry_after(3)
    }

    #[tokio::test]
    async fn a_json_rpc_refusal_answers_the_id_and_names_the_limit() {
        let response = limited().into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32029, "message": "slow down",
                "data": {"limit": "rate_limited", "retry_after": 3}}})
        );
    }

    #[tokio::test]
    async fn forward_auth_reads_every_refusal_in_the_api_shape() {
        let response = limited().into_plain_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let (_, body) = answer(response).await;
        assert_eq!(
            body,
            json!({"error": {"code": "rate_limited", "message": "slow down", "retry_after": 3}})
        );
        let unreadable = Refused::json_rpc(
            StatusCode::BAD_REQUEST,
            VerifyCode::HeaderMismatch,
            Value::Null,
            -32020,
            "no",
        );
        let (status, body) = answer(unreadable.into_plain_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": {"code": "bad_request", "message": "no"}})
        );
        let down = Refused::json_rpc(
            StatusCode::SERVICE_UNAVAILABLE,
            VerifyCode::LimitsUnavailable,
            Value::Null,
            -32029,
            "down",
        );
        let (_, body) = answer(down.into_plain_response()).await;
        assert_eq!(body["error"]["code"], "limits_unavailable");
    }

    #[tokio::test]
    async fn a_challenge_goes_in_www_authenticate_unless_it_cannot() {
        let refused = Refused::plain(
            StatusCode::UNAUTHORIZED,
            VerifyCode::NotFound,
            "unauthorized",
            "no",
        );
        let response = refused
            .clone()
            .with_challenge("Bearer".into())
            .into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let (_, body) = answer(response).await;
        assert_eq!(
            body,
            json!({"error": {"code": "unauthorized", "message": "no"}})
        );
        let broken = refused
            .with_challenge("Bearer\n".into())
            .into_response::<Empty<Bytes>>();
        assert!(!broken.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn a_given_body_is_answered_as_given() {
        let body = json!({"error": {"code": "origin_not_allowed"}});
        let refused = Refused::given(StatusCode::FORBIDDEN, VerifyCode::OriginNotAllowed, body);
        assert_eq!(refused.reason(), VerifyCode::OriginNotAllowed);
        assert_eq!(
            refused.into_response::<Empty<Bytes>>().status(),
            StatusCode::FORBIDDEN
        );
    }
}
