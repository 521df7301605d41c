//! MCP awareness: which tool a JSON-RPC `tools/call` request calls.

use serde::Deserialize;
use serde_json::Value;

/// A `tools/call` request: the tool and the JSON-RPC id to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub id: Value,
}

#[derive(Deserialize)]
struct Message {
    method: Option<String>,
    #[serde(default)]
    id: Value,
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    name: Option<Value>,
}

/// Why a body cannot be let through.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyProblem {
    /// `tools/call` without a string `params.name`, or a batch containing a tool call.
    Unverifiable(&'static str),
}

/// Finds the tool of a JSON-RPC body. Non-JSON bodies and other methods are
/// `Ok(None)`: they are audited as `METHOD /path`.
pub fn tool_call(body: &[u8]) -> Result<Option<ToolCall>, BodyProblem> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    if let Value::Array(items) = &value {
        // A batch could smuggle a tool call past a single-tool check.
        let has_tool_call = items
            .iter()
            .any(|m| m.get("method").and_then(Value::as_str) == Some("tools/call"));
        return if has_tool_call {
            Err(BodyProblem::Unverifiable(
                "batched tools/call requests are not accepted",
            ))
        } else {
            Ok(None)
        };
    }
    let Ok(message) = serde_json::from_value::<Message>(value) else {
        return Ok(None);
    };
    if message.method.as_deref() != Some("tools/call") {
        return Ok(None);
    }
    match message.params.and_then(|p| p.name) {
        Some(Value::String(name)) => Ok(Some(ToolCall {
            name,
            id: message.id,
        })),
        _ => Err(BodyProblem::Unverifiable(
            "tools/call needs a string params.name",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tool() {
        let call = tool_call(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#)
            .expect("ok")
            .expect("a call");
        assert_eq!(call.name, "whoami");
        assert_eq!(call.id, serde_json::json!(7));
        assert_eq!(
            tool_call(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Ok(None)
        );
        assert_eq!(tool_call(b"not json"), Ok(None));
    }

    #[test]
    fn refuses_what_it_cannot_check() {
        assert!(tool_call(br#"{"method":"tools/call","params":{"name":5}}"#).is_err());
        assert!(tool_call(br#"{"method":"tools/call"}"#).is_err());
        assert!(tool_call(br#"[{"method":"tools/call","params":{"name":"x"}}]"#).is_err());
        assert_eq!(tool_call(br#"[{"method":"ping"}]"#), Ok(None));
    }
}
