//! What a request costs against its key's rate limit and quota, and the
//! answer when it does not fit.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use super::{body::LayerBody, jsonrpc::Message, service::json_response};
use crate::{
    limit::{Exceeded, LimitKind, LimiterError},
    outcome::VerifyCode,
};

/// JSON-RPC error code of a call over a key's rate limit or quota.
pub const LIMITED_ERROR_CODE: i64 = -32029;

/// What a request counts as against its key's limits. Behind an MCP layer
/// only a `tools/call` counts; behind one that is not MCP every request
/// does (a non-MCP upstream has no tool calls, and a limit that never
/// counted would be silently ignored).
pub(super) enum Counted<'a> {
    ToolCall {
        name: &'a str,
        id: &'a serde_json::Value,
    },
    Request,
}

impl<'a> Counted<'a> {
    pub(super) fn of(mcp: bool, message: Option<&'a Message>) -> Option<Self> {
        match message {
            _ if !mcp => Some(Self::Request),
            Some(Message::ToolCall { name, id }) => Some(Self::ToolCall { name, id }),
            _ => None,
        }
    }

    /// The tool whose overrides also apply; none for a plain request.
    pub(super) fn tool(&self) -> Option<&'a str> {
        match self {
            Self::ToolCall { name, .. } => Some(name),
            Self::Request => None,
        }
    }

    /// The refusal's body: a JSON-RPC error answering the call's id, or the
    /// layer's plain error for a request that is not JSON-RPC.
    fn refusal(
        &self,
        code: VerifyCode,
        message: &str,
        retry_after: Option<u64>,
    ) -> serde_json::Value {
        match self {
            Self::ToolCall { id, .. } => {
                let mut error = json!({"code": LIMITED_ERROR_CODE, "message": message});
                if let Some(retry_after) = retry_after {
                    error["data"] = json!({"limit": code.as_str(), "retry_after": retry_after});
                }
                json!({"jsonrpc": "2.0", "id": id, "error": error})
            }
            Self::Request => {
                let mut error = json!({"code": code.as_str(), "message": message});
                if let Some(retry_after) = retry_after {
                    error["retry_after"] = json!(retry_after);
                }
                json!({"error": error})
            }
        }
    }
}

/// The refusal of a request the limiter did not admit (`None`: admitted):
/// 429 with `Retry-After` and an error naming the limit; 503 when the
/// limiter could not decide.
pub(super) fn limited<B>(
    verdict: Result<Result<(), Exceeded>, LimiterError>,
    counted: &Counted<'_>,
) -> Option<(Response<LayerBody<B>>, VerifyCode)> {
    match verdict {
        Ok(Ok(())) => None,
        Ok(Err(exceeded)) => {
            let code = match exceeded.kind {
                LimitKind::Rate => VerifyCode::RateLimited,
                LimitKind::Quota => VerifyCode::QuotaExhausted,
            };
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                counted.refusal(code, &exceeded.message, Some(exceeded.retry_after_secs)),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(exceeded.retry_after_secs),
            );
            Some((response, code))
        }
        Err(err) => {
            tracing::error!(error = %err, "limiter unavailable: call refused");
            let code = VerifyCode::LimitsUnavailable;
            Some((
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    counted.refusal(code, "the key's limits cannot be checked", None),
                ),
                code,
            ))
        }
    }
}
