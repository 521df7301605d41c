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
//!   control character;
//! - the methods a key's allowlists govern (`tools/call`, `resources/read`,
//!   `resources/subscribe`, `resources/unsubscribe`, `prompts/get`,
//!   `completion/complete`) are spelled exactly, and a resource URI they
//!   name (`params.uri`, `params.ref.uri`) is 1–2048 bytes without a control
//!   character ([`uses`]).

mod envelope;
#[cfg(test)]
mod reference_tests;
mod strict;
#[cfg(test)]
mod tests;
mod uses;

use std::borrow::Cow;

use serde_json::Value;

use self::envelope::{Addressed, Envelope, Params};
pub use self::strict::MAX_DEPTH;
pub(crate) use self::strict::same_member;
pub use self::uses::{
    COMPLETION_COMPLETE, GOVERNED, PROMPTS_GET, REF_PROMPT, REF_RESOURCE, RESOURCES_READ, Uses,
};
use self::uses::{Named, uses_of};
use crate::tools::MAX_TOOL_NAME_LEN;

/// Longest string id accepted.
pub const MAX_ID_LEN: usize = 128;
/// Longest method name accepted.
pub const MAX_METHOD_LEN: usize = 128;

/// JSON-RPC error codes the layer answers with.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
/// `HeaderMismatch` (spec revision 2026-07-28): a mirrored header disagrees
/// with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// What a body says, once read.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A `tools/call` request.
    ToolCall { name: String, id: Value },
    /// Any other request (it has an id) or notification (it has none).
    /// `addresses` is what the request names for its `Mcp-Name` header, for
    /// the methods that define one ([`AddressedMember`]); `uses`, what the
    /// request uses that an allowlist governs, for the methods that do.
    Method {
        method: String,
        id: Value,
        addresses: Option<String>,
        uses: Option<Uses>,
    },
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

    /// [`Message::subject`], taken: the message's own string when it has one.
    pub fn into_subject(self) -> String {
        match self {
            Self::ToolCall { name, .. } => name,
            Self::Method { method, .. } => method,
            Self::Response { .. } => "(response)".to_owned(),
        }
    }

    /// The value an `Mcp-Name` header must carry: the tool of a `tools/call`,
    /// the member [`AddressedMember`] names for other methods; `None` when
    /// the method defines none or the body lacks it.
    pub fn addresses(&self) -> Option<&str> {
        match self {
            Self::ToolCall { name, .. } => Some(name),
            Self::Method { addresses, .. } => addresses.as_deref(),
            Self::Response { .. } => None,
        }
    }

    /// What the request uses that a resource or prompt allowlist governs.
    pub fn uses(&self) -> Option<&Uses> {
        match self {
            Self::Method { uses, .. } => uses.as_ref(),
            Self::ToolCall { .. } | Self::Response { .. } => None,
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

/// The `params` member a request's `Mcp-Name` header mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressedMember {
    Name,
    Uri,
    TaskId,
}

impl AddressedMember {
    /// For the methods spec revision 2026-07-28 defines `Mcp-Name` on
    /// (`tasks/*`: the tasks extension, SEP-2663); other methods have none.
    pub fn of(method: &str) -> Option<Self> {
        match method {
            TOOLS_CALL | PROMPTS_GET => Some(Self::Name),
            RESOURCES_READ => Some(Self::Uri),
            "tasks/get" | "tasks/update" | "tasks/cancel" => Some(Self::TaskId),
            _ => None,
        }
    }

    /// The member's name in `params`.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Uri => "uri",
            Self::TaskId => "taskId",
        }
    }
}

/// The refusal of a body outside the strict rule.
const NOT_STRICT_JSON: &str = "the body is not one unambiguous JSON document (strict UTF-8 JSON, no duplicate members, safe integers, nesting ≤ 32)";

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
///
/// The whole body is checked, but only the members that decide what the
/// message is are kept ([`envelope`]); `tests.rs` holds this to the same
/// verdicts as a reader that builds the whole tree first.
pub fn read_message(body: &[u8]) -> Result<Message, Rejection> {
    let mut envelope = read_envelope(body)?;
    let id = read_id(envelope.id.take())?;
    check_framing(&envelope, &id)?;
    let Some(method) = envelope.method.take() else {
        return read_response(&envelope, id);
    };
    let method = read_method(method, &envelope, &id)?;
    let addressed = read_params(envelope.params, &id)?;
    if method == TOOLS_CALL {
        read_tool_call(addressed, id)
    } else {
        read_other_method(method, addressed, id)
    }
}

/// The body as one JSON object under the strict rule; no id can be echoed yet.
fn read_envelope(body: &[u8]) -> Result<Envelope<'_>, Rejection> {
    let envelope = envelope::read(body).map_err(|_| Rejection {
        code: PARSE_ERROR,
        message: NOT_STRICT_JSON,
        id: Value::Null,
    })?;
    envelope.ok_or_else(|| {
        Rejection::invalid(
            "the body must be one JSON-RPC message object (batches are not accepted)",
            &Value::Null,
        )
    })
}

/// The id (`null` when absent); every later refusal echoes it.
fn read_id(id: Option<Value>) -> Result<Value, Rejection> {
    let id = id.unwrap_or(Value::Null);
    if !valid_id(&id) {
        return Err(Rejection::invalid(
            "id must be a string of at most 128 bytes or a safe integer",
            &Value::Null,
        ));
    }
    Ok(id)
}

/// Only JSON-RPC members, and `jsonrpc` exactly `"2.0"`.
fn check_framing(envelope: &Envelope<'_>, id: &Value) -> Result<(), Rejection> {
    if envelope.has_unknown {
        return Err(Rejection::invalid(
            "unknown member in a JSON-RPC message",
            id,
        ));
    }
    if envelope.jsonrpc.as_ref().and_then(Option::as_deref) != Some("2.0") {
        return Err(Rejection::invalid("jsonrpc must be \"2.0\"", id));
    }
    Ok(())
}

/// A message without a method: a response, with an id and exactly one of
/// `result` and `error`.
fn read_response(envelope: &Envelope<'_>, id: Value) -> Result<Message, Rejection> {
    let is_response = envelope.has_result ^ envelope.has_error;
    if is_response && envelope.params.is_none() && !id.is_null() {
        Ok(Message::Response { id })
    } else {
        Err(Rejection::invalid(
            "a message needs a method, or an id with exactly one of result and error",
            &id,
        ))
    }
}

/// A request's method: a valid name, on a message without `result`/`error`.
fn read_method<'de>(
    method: Option<Cow<'de, str>>,
    envelope: &Envelope<'de>,
    id: &Value,
) -> Result<Cow<'de, str>, Rejection> {
    if envelope.has_result || envelope.has_error {
        return Err(Rejection::invalid(
            "a request cannot carry result or error",
            id,
        ));
    }
    method.filter(|m| valid_method(m)).ok_or_else(|| {
        Rejection::invalid(
            "method must be 1-128 characters of A-Z a-z 0-9 / _ . : - $",
            id,
        )
    })
}

/// `params`, when present, must be an object.
fn read_params<'de>(params: Option<Params<'de>>, id: &Value) -> Result<Addressed<'de>, Rejection> {
    match params {
        None => Ok(Addressed::default()),
        Some(Params::Object(addressed)) => Ok(addressed),
        Some(Params::Other) => Err(Rejection::invalid("params must be an object", id)),
    }
}

/// A `tools/call`: `params.name` is the tool.
fn read_tool_call(addressed: Addressed<'_>, id: Value) -> Result<Message, Rejection> {
    match addressed.name {
        Some(name) if valid_tool_name(&name) => Ok(Message::ToolCall {
            name: name.into_owned(),
            id,
        }),
        _ => Err(Rejection {
            code: INVALID_PARAMS,
            message: "tools/call needs params.name: a string of 1-128 characters without control characters",
            id,
        }),
    }
}

/// Any other method: what it uses that an allowlist governs, and what its
/// `Mcp-Name` header must mirror.
fn read_other_method(
    method: Cow<'_, str>,
    addressed: Addressed<'_>,
    id: Value,
) -> Result<Message, Rejection> {
    if misspelled_governed(&method) {
        return Err(Rejection::invalid(
            "tools/call, resources/*, prompts/get and completion/complete must be spelled exactly",
            &id,
        ));
    }
    let reference = addressed
        .reference
        .as_ref()
        .map(|r| [r.kind.as_deref(), r.name.as_deref(), r.uri.as_deref()]);
    let named = Named {
        name: addressed.name.as_deref(),
        uri: addressed.uri.as_deref(),
        reference,
    };
    let uses = uses_of(&method, named).map_err(|message| Rejection {
        code: INVALID_PARAMS,
        message,
        id: id.clone(),
    })?;
    let addresses = match AddressedMember::of(&method) {
        Some(AddressedMember::Name) => addressed.name,
        Some(AddressedMember::Uri) => addressed.uri,
        Some(AddressedMember::TaskId) => addressed.task_id,
        None => None,
    };
    Ok(Message::Method {
        method: method.into_owned(),
        id,
        addresses: addresses.map(Cow::into_owned),
        uses,
    })
}

/// A governed method in another case (`TOOLS/CALL`, `Resources/Read`).
fn misspelled_governed(method: &str) -> bool {
    std::iter::once(TOOLS_CALL)
        .chain(GOVERNED)
        .any(|governed| method != governed && method.eq_ignore_ascii_case(governed))
}

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
