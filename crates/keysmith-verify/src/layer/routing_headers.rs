//! `Mcp-Method` and `Mcp-Name` (spec revision 2026-07-28, SEP-2243) mirror
//! the body so proxies can route without reading it. The layer decides from
//! the body, but whatever sits behind it (a load balancer, a WAF, a server on
//! an older revision that never compares them) may act on the headers. So a
//! header that is present must say what the body says, whatever the
//! request's protocol version, and what goes on is one canonical spelling of
//! the body's value: the revision's advice to intermediaries, never trust an
//! unvalidated mirrored header, holds for everything behind the layer.
//!
//! A value is plain visible ASCII, or `=?base64?<standard Base64 of the UTF-8
//! bytes>?=` (markers case-sensitive, canonical padding). Whitespace around a
//! value is not part of it (RFC 9110 §5.5). Absent headers pass: revisions
//! before 2026-07-28 send none, and a 2026-07-28 server refuses their absence
//! itself. `Mcp-Param-*` headers pass only on 2026-07-28 or later.

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::jsonrpc::Message;

// Names made once: a `&str` lookup parses the name on every request.
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");

const SENTINEL_START: &str = "=?base64?";
const SENTINEL_END: &str = "?=";

/// Why a routing header is refused (the JSON-RPC error's message).
pub type Mismatch = &'static str;

/// The first revision whose servers must compare mirrored headers with the
/// body.
const VALIDATING_REVISION: &str = "2026-07-28";
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_PARAM_PREFIX: &str = "mcp-param-";

/// Checks both headers against `message` and rewrites each one present to
/// the canonical spelling of the body's value; refuses `Mcp-Param-*` headers
/// nothing would check ([`check_param_headers`]).
pub fn check_and_normalize(
    headers: &mut HeaderMap,
    message: Option<&Message>,
) -> Result<(), Mismatch> {
    check_param_headers(headers)?;
    for (name, expected, mismatch) in [
        (
            MCP_METHOD,
            message.and_then(Message::method),
            "Mcp-Method header does not match the method",
        ),
        (
            MCP_NAME,
            message.and_then(Message::addresses),
            "Mcp-Name header does not match what the request addresses (params.name of tools/call and prompts/get, params.uri of resources/read, params.taskId of tasks/*)",
        ),
    ] {
        let mut values = headers.get_all(&name).iter();
        let canonical = match (values.next(), values.next(), expected) {
            (None, _, _) => continue,
            (Some(value), None, Some(expected)) if decode(value).as_deref() == Some(expected) => {
                encode(expected)
            }
            _ => return Err(mismatch),
        };
        headers.insert(name, canonical);
    }
    Ok(())
}

/// `Mcp-Param-*` headers mirror tool arguments that the tool's schema
/// designates, which the layer does not know, so it cannot check them; a
/// server on 2026-07-28 or later must. Under an older or absent
/// `MCP-Protocol-Version` nothing would, and something behind the layer
/// could act on a value the body contradicts: refused, as the revision
/// advises intermediaries.
fn check_param_headers(headers: &HeaderMap) -> Result<(), Mismatch> {
    if !headers
        .keys()
        .any(|name| name.as_str().starts_with(MCP_PARAM_PREFIX))
    {
        return Ok(());
    }
    let mut versions = headers.get_all(MCP_PROTOCOL_VERSION).iter();
    let validated = match (versions.next(), versions.next()) {
        // Revisions are dates, so their order is the text's.
        (Some(version), None) => version.to_str().is_ok_and(|v| {
            v.len() == VALIDATING_REVISION.len()
                && v.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                && v >= VALIDATING_REVISION
        }),
        _ => false,
    };
    if validated {
        Ok(())
    } else {
        Err(
            "Mcp-Param-* headers need MCP-Protocol-Version 2026-07-28 or later, whose servers check them against the body",
        )
    }
}

/// The text a header value carries, or `None` when it is neither a plain
/// visible-ASCII value nor a well-formed Base64 sentinel.
pub fn decode(value: &HeaderValue) -> Option<String> {
    let value = value.as_bytes().trim_ascii();
    if !value
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | 0x21..=0x7e))
    {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?;
    match value
        .strip_prefix(SENTINEL_START)
        .and_then(|rest| rest.strip_suffix(SENTINEL_END))
    {
        // STANDARD refuses missing padding and non-zero trailing bits: one
        // spelling per value, so two decoders cannot read two texts.
        Some(payload) => String::from_utf8(STANDARD.decode(payload).ok()?).ok(),
        None => Some(value.to_owned()),
    }
}

/// The canonical spelling of `text` (what the official SDKs send): plain
/// when it is visible ASCII with no whitespace at either end and could not
/// be read as a sentinel, Base64 otherwise.
pub fn encode(text: &str) -> HeaderValue {
    let plain = text
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | 0x21..=0x7e))
        && text.trim_matches([' ', '\t']) == text
        && !(text.starts_with(SENTINEL_START)
            && text[SENTINEL_START.len()..].ends_with(SENTINEL_END));
    let spelled = if plain {
        text.to_owned()
    } else {
        format!("{SENTINEL_START}{}{SENTINEL_END}", STANDARD.encode(text))
    };
    HeaderValue::try_from(spelled).expect("visible ASCII is a valid header value")
}

#[cfg(test)]
#[path = "routing_headers_tests.rs"]
mod tests;
