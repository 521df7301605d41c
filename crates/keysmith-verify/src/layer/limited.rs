//! What a request costs against its key's rate limit and quota, and the
//! answer when it does not fit.

use http::StatusCode;
use serde_json::Value;

use super::{jsonrpc::Message, refused::Refused, shared::Shared};
use crate::{
    limit::{Exceeded, LimitKind, LimiterError},
    outcome::{VerifiedKey, VerifyCode},
};

/// JSON-RPC error code of a call over a key's rate limit or quota.
pub const LIMITED_ERROR_CODE: i64 = -32029;

/// What a request counts as against its key's limits. Behind an MCP layer
/// only a `tools/call` counts; behind one that is not MCP every request
/// does (a non-MCP upstream has no tool calls, and a limit that never
/// counted would be silently ignored).
pub(super) enum Counted<'a> {
    ToolCall { name: &'a str, id: &'a Value },
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

    /// The refusal: a JSON-RPC error answering the call's id, or the
    /// layer's plain error for a request that is not JSON-RPC.
    fn refusal(&self, status: StatusCode, code: VerifyCode, message: String) -> Refused {
        match self {
            Self::ToolCall { id, .. } => {
                let id = Value::clone(id);
                Refused::json_rpc(status, code, id, LIMITED_ERROR_CODE, message)
            }
            Self::Request => Refused::plain(status, code, code.as_str(), message),
        }
    }
}

/// The stage: a request allowed so far counts against its key's limits
/// (`Err`: over one, or the limiter could not decide). An MCP layer counts
/// tool calls only; `mcp` false counts every request.
pub(super) async fn limit(
    shared: &Shared,
    mcp: bool,
    key: &VerifiedKey,
    message: Option<&Message>,
) -> Result<(), Refused> {
    if key.limits.is_unlimited() {
        return Ok(());
    }
    let Some(counted) = Counted::of(mcp, message) else {
        return Ok(());
    };
    let verdict = shared
        .limiter
        .check(key, counted.tool(), shared.clock.now())
        .await;
    limited(verdict, &counted).map_or(Ok(()), Err)
}

/// The refusal of a request the limiter did not admit (`None`: admitted):
/// 429 with `Retry-After` and an error naming the limit; 503 when the
/// limiter could not decide.
fn limited(
    verdict: Result<Result<(), Exceeded>, LimiterError>,
    counted: &Counted<'_>,
) -> Option<Refused> {
    match verdict {
        Ok(Ok(())) => None,
        Ok(Err(exceeded)) => {
            let code = match exceeded.kind {
                LimitKind::Rate => VerifyCode::RateLimited,
                LimitKind::Quota => VerifyCode::QuotaExhausted,
            };
            let refused = counted.refusal(StatusCode::TOO_MANY_REQUESTS, code, exceeded.message);
            Some(refused.with_retry_after(exceeded.retry_after_secs))
        }
        Err(err) => {
            tracing::error!(error = %err, "limiter unavailable: call refused");
            let message = "the key's limits cannot be checked".to_owned();
            let code = VerifyCode::LimitsUnavailable;
            Some(counted.refusal(StatusCode::SERVICE_UNAVAILABLE, code, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        layer::{
            TenantScope, VerifyLayer,
            tests::{OneKey, good_key},
        },
        limit::{KeyLimits, RateLimit},
    };

    fn one_call_a_minute() -> VerifiedKey {
        let mut key = good_key();
        let rate = RateLimit {
            per_minute: Some(1),
            tools: vec![],
        };
        key.limits = KeyLimits::new(Some(rate), None).expect("valid limits");
        key
    }

    fn call() -> Message {
        Message::ToolCall {
            name: "echo".into(),
            id: json!(1),
        }
    }

    #[tokio::test]
    async fn an_mcp_layer_counts_tool_calls_only() {
        let layer = VerifyLayer::builder(OneKey, TenantScope::Any).build();
        let (shared, key) = (layer.shared(), one_call_a_minute());
        let list = Message::Method {
            method: "tools/list".into(),
            id: json!(2),
            addresses: None,
            uses: None,
        };
        for _ in 0..3 {
            assert!(limit(shared, true, &key, Some(&list)).await.is_ok());
            assert!(limit(shared, true, &key, None).await.is_ok());
        }
        assert!(limit(shared, true, &key, Some(&call())).await.is_ok());
        let refused = limit(shared, true, &key, Some(&call())).await;
        let refused = refused.expect_err("the second call of the minute");
        assert_eq!(refused.reason(), VerifyCode::RateLimited);
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn a_layer_that_is_not_mcp_counts_every_request() {
        let layer = VerifyLayer::builder(OneKey, TenantScope::Any).build();
        let (shared, key) = (layer.shared(), one_call_a_minute());
        assert!(limit(shared, false, &key, None).await.is_ok());
        let refused = limit(shared, false, &key, None).await.expect_err("over");
        assert_eq!(refused.reason(), VerifyCode::RateLimited);
        // An unlimited key is never counted.
        assert!(limit(shared, false, &good_key(), None).await.is_ok());
    }
}
