//! The one JSON-RPC message an MCP request body carries, read strictly.
//!
//! The layer decides what a request does from its body, and the upstream
//! server then reads the same bytes with its own parser (Node's `JSON.parse`,
//! Python's `json`, Go's case-insensitive `encoding/json`, serde…). Where two
//! parsers could disagree about a body, the body is refused: only a body that
//! every mainstream parser reads as the same single message gets through.
//!
//! The rule, in full:
//! - strict UTF-8 JSON (no BOM, no comments, no `NaN`, no lone surrogates,
//!   nothing after the value), nested at most [`MAX_DEPTH`] deep;
//! - no two members of one object whose names are equal, or equal once case
//!   is folded (`method` and `Method`: Go matches either);
//! - integers within ±(2^53 − 1), where JavaScript and Python read the same
//!   value; no integral float beyond that either;
//! - one object, not a batch; members only `jsonrpc` (exactly `"2.0"`), `id`,
//!   `method`, `params`, `result`, `error`;
//! - `method` 1–128 characters of `A-Z a-z 0-9 / _ . : - $`, and a method that
//!   is `tools/call` in another case is refused; `params` an object;
//! - `id` a string of at most [`MAX_ID_LEN`] bytes or a safe integer;
//! - `tools/call` needs `params.name`, a string of 1–128 characters with no
//!   control character.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::tools::MAX_TOOL_NAME_LEN;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;
/// Longest string id accepted.
pub const MAX_ID_LEN: usize = 128;
/// Longest method name accepted.
pub const MAX_METHOD_LEN: usize = 128;
/// The largest integer JavaScript reads exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// JSON-RPC error codes the layer answers with.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;

/// What a body says, once read.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A `tools/call` request.
    ToolCall { name: String, id: Value },
    /// Any other request (it has an id) or notification (it has none).
    Method { method: String, id: Value },
    /// A client's answer to a request of the server (sampling, elicitation…).
    Response { id: Value },
}

impl Message {
    /// The JSON-RPC id to answer with (`null` for notifications).
    pub fn id(&self) -> &Value {
        match self {
            Self::ToolCall { id, .. } | Self::Method { id, .. } | Self::Response { id } => id,
        }
    }

    /// What the audit log names: the tool, the method, or `(response)`.
    pub fn subject(&self) -> &str {
        match self {
            Self::ToolCall { name, .. } => name,
            Self::Method { method, .. } => method,
            Self::Response { .. } => "(response)",
        }
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Self::ToolCall { .. } => Some(TOOLS_CALL),
            Self::Method { method, .. } => Some(method),
            Self::Response { .. } => None,
        }
    }
}

pub const TOOLS_CALL: &str = "tools/call";
pub const TOOLS_LIST: &str = "tools/list";

/// Why a body is refused; `id` is echoed when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: i64,
    pub message: &'static str,
    pub id: Value,
}

impl Rejection {
    fn invalid(message: &'static str, id: &Value) -> Self {
        Self {
            code: INVALID_REQUEST,
            message,
            id: id.clone(),
        }
    }
}

/// Reads `body` as one JSON-RPC message under the rule above.
pub fn read_message(body: &[u8]) -> Result<Message, Rejection> {
    let value = parse_strict(body).map_err(|_| Rejection {
        code: PARSE_ERROR,
        message: "the body is not one unambiguous JSON document (strict UTF-8 JSON, no duplicate members, safe integers, nesting ≤ 32)",
        id: Value::Null,
    })?;
    let Value::Object(message) = value else {
        return Err(Rejection::invalid(
            "the body must be one JSON-RPC message object (batches are not accepted)",
            &Value::Null,
        ));
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if !valid_id(&id) {
        return Err(Rejection::invalid(
            "id must be a string of at most 128 bytes or a safe integer",
            &Value::Null,
        ));
    }
    // A refusal from here on echoes the (valid) id.
    let echo = &id;
    if message.keys().any(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(Rejection::invalid(
            "unknown member in a JSON-RPC message",
            echo,
        ));
    }
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Rejection::invalid("jsonrpc must be \"2.0\"", echo));
    }
    let Some(method) = message.get("method") else {
        let is_response = message.contains_key("result") ^ message.contains_key("error");
        return if is_response && !message.contains_key("params") && !id.is_null() {
            Ok(Message::Response { id })
        } else {
            Err(Rejection::invalid(
                "a message needs a method, or an id with exactly one of result and error",
                echo,
            ))
        };
    };
    if message.contains_key("result") || message.contains_key("error") {
        return Err(Rejection::invalid(
            "a request cannot carry result or error",
            echo,
        ));
    }
    let Some(method) = method.as_str().filter(|m| valid_method(m)) else {
        return Err(Rejection::invalid(
            "method must be 1-128 characters of A-Z a-z 0-9 / _ . : - $",
            echo,
        ));
    };
    let params = match message.get("params") {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => return Err(Rejection::invalid("params must be an object", echo)),
    };
    if method != TOOLS_CALL {
        if method.eq_ignore_ascii_case(TOOLS_CALL) {
            return Err(Rejection::invalid(
                "tools/call must be spelled exactly",
                echo,
            ));
        }
        return Ok(Message::Method {
            method: method.to_owned(),
            id,
        });
    }
    match params.and_then(|p| p.get("name")) {
        Some(Value::String(name)) if valid_tool_name(name) => Ok(Message::ToolCall {
            name: name.clone(),
            id,
        }),
        _ => Err(Rejection {
            code: -32602,
            message: "tools/call needs params.name: a string of 1-128 characters without control characters",
            id,
        }),
    }
}

const MEMBERS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

fn valid_id(id: &Value) -> bool {
    match id {
        Value::Null => true,
        Value::String(s) => s.len() <= MAX_ID_LEN,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

fn valid_method(method: &str) -> bool {
    (1..=MAX_METHOD_LEN).contains(&method.len())
        && method.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b':' | b'-' | b'$')
        })
}

fn valid_tool_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME_LEN).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

/// Parses `body` into a value, refusing what another parser could read differently.
pub fn parse_strict(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Strict { depth: 0 }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A value at `depth`, read strictly.
struct Strict {
    depth: usize,
}

impl Strict {
    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom("nested too deeply"));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

/// Member names compared the way the most lenient parser compares them:
/// Unicode case folding (Go folds `ſ` to `s` and `K` to `k` too).
fn folded(name: &str) -> String {
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.to_uppercase().to_lowercase()
    }
}

/// Whether two member names are one for the most lenient parser, without
/// allocating when both are ASCII (the names of every MCP message).
fn same_member(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        folded(a) == folded(b)
    }
}

/// Up to this many members, a new name is compared with each earlier one;
/// past it, the folded names go into a set, so that an object of many
/// members costs linear time, not quadratic.
const FEW_MEMBERS: usize = 8;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("strict JSON")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(E::custom("integer outside ±(2^53 - 1)"));
        }
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER {
            return Err(E::custom("integer outside ±(2^53 - 1)"));
        }
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json reads an integer too large for 64 bits as a float: an
        // integral float this large may be such an integer, read differently
        // by JavaScript (rounded) and Python (exact).
        if v.fract() == 0.0 && v.abs() > MAX_SAFE_INTEGER as f64 {
            return Err(E::custom("integral number outside ±(2^53 - 1)"));
        }
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested()?)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        let mut many: Option<std::collections::HashSet<String>> = None;
        while let Some(name) = map.next_key::<String>()? {
            let duplicate = if members.len() < FEW_MEMBERS {
                members.keys().any(|seen| same_member(seen, &name))
            } else {
                let seen = many.get_or_insert_with(|| members.keys().map(|k| folded(k)).collect());
                !seen.insert(folded(&name))
            };
            if duplicate {
                return Err(de::Error::custom("duplicate member"));
            }
            let value = map.next_value_seed(self.nested()?)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(body: &str) -> Result<Message, Rejection> {
        read_message(body.as_bytes())
    }

    #[test]
    fn reads_what_mcp_clients_send() {
        assert_eq!(
            call(
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#
            ),
            Ok(Message::ToolCall {
                name: "whoami".into(),
                id: json!(7)
            })
        );
        assert_eq!(
            call(r#" {"jsonrpc":"2.0","id":"a","method":"tools/list"} "#),
            Ok(Message::Method {
                method: "tools/list".into(),
                id: json!("a")
            })
        );
        assert_eq!(
            call(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .map(|m| m.subject().to_owned()),
            Ok("notifications/initialized".into())
        );
        assert_eq!(
            call(r#"{"jsonrpc":"2.0","id":3,"result":{"roots":[]}}"#),
            Ok(Message::Response { id: json!(3) })
        );
        assert_eq!(
            call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1.5,"y":[{"z":null}],"big":9007199254740991}}}"#)
                .map(|m| m.subject().to_owned()),
            Ok("a".into())
        );
    }

    #[test]
    fn refuses_what_another_parser_could_read_differently() {
        let refused = [
            // Not one strict JSON document.
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} {}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list",}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} // x"#,
            r#"{"jsonrpc":"2.0","id":NaN,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\ud800"}}"#,
            r#"{'jsonrpc':'2.0'}"#,
            "",
            // Duplicates, exact or case-folded.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"secret"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"secret"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","nAme":"secret"}}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"pass\":1,\"pa\u{17f}\u{17f}\":2}}}",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/list"}"#,
            // Numbers read differently by JavaScript and Python.
            r#"{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":123456789012345678901234567890}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}"#,
            // Not one message of the expected shape.
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            r#""tools/call""#,
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"secret"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"secret"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":" tools/call","params":{"name":"secret"}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            r#"{"id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["secret"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["secret"]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\u0000"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
        ];
        for body in refused {
            assert!(call(body).is_err(), "accepted: {body}");
        }
        let long_name = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
            "a".repeat(129)
        );
        assert!(call(&long_name).is_err());
        let long_id = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","method":"tools/list"}}"#,
            "i".repeat(129)
        );
        assert!(call(&long_id).is_err());
    }

    #[test]
    fn objects_of_many_members_are_checked_like_small_ones() {
        // Either side of FEW_MEMBERS, the duplicate first, last or folded.
        for size in [1, FEW_MEMBERS - 1, FEW_MEMBERS, FEW_MEMBERS + 1, 200] {
            let members: Vec<String> = (0..size).map(|i| format!("\"pass{i}\":{i}")).collect();
            let body = |extra: &str| {
                format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{{}{extra}}}}}}}"#,
                    members.join(",")
                )
            };
            assert!(call(&body("")).is_ok(), "{size} distinct members refused");
            for duplicate in [",\"pass0\":0", ",\"PASS0\":0", ",\"pa\u{17f}\u{17f}0\":0"] {
                let last = size - 1;
                let of_last = duplicate.replace('0', &last.to_string());
                for extra in [duplicate.to_owned(), of_last] {
                    assert!(
                        call(&body(&extra)).is_err(),
                        "{size} members, accepted {extra}"
                    );
                }
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":{}1{}}}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        // params (1), arguments (2), then the arrays.
        assert!(call(&nested(MAX_DEPTH - 3)).is_ok());
        assert!(call(&nested(MAX_DEPTH - 2)).is_err());
        assert!(call(&nested(10_000)).is_err());
    }

    #[test]
    fn refusals_echo_the_id_when_it_is_readable() {
        let refusal = call(r#"{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{}}"#)
            .expect_err("refused");
        assert_eq!(refusal.id, json!("r1"));
        assert_eq!(refusal.code, -32602);
        assert_eq!(call("{").expect_err("refused").code, PARSE_ERROR);
    }
}
