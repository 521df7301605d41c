//! MCP mode: the body decides, never the headers.
//!
//! Every request body is read under the size cap, whatever its method,
//! Content-Type or encoding, and judged as one JSON-RPC message
//! ([`super::jsonrpc`]). A body the layer cannot read the way every upstream
//! would is refused, never forwarded. What goes on is exactly the bytes that
//! were judged, with headers that leave no room for another reading:
//! `Content-Type: application/json`, a `Content-Length`, no
//! `Transfer-Encoding`, no `Content-Encoding`, and `Mcp-Method` / `Mcp-Name`
//! checked against the body ([`super::routing_headers`]).

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use super::{
    body::BoxError,
    jsonrpc::{self, HEADER_MISMATCH, INVALID_REQUEST, Message, PARSE_ERROR},
    refused::Refused,
    routing_headers,
    shared::Shared,
};
use crate::outcome::VerifyCode;

/// The stage: in MCP mode the body read and judged (see [`read`]); behind a
/// layer that is not MCP, the body untouched and no message.
pub(super) async fn judge<B>(
    shared: &Shared,
    parts: &mut Parts,
    body: B,
) -> Result<(B, Option<Message>), Refused>
where
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<BoxError>,
{
    if shared.mcp {
        read(parts, body, shared.body_limit).await
    } else {
        Ok((body, None))
    }
}

/// What a refused request would have done, for its audit line: the
/// message its body carries (MCP mode), if it can be read.
pub(super) async fn refused_message<B>(
    shared: &Shared,
    parts: &mut Parts,
    body: B,
) -> Option<Message>
where
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<BoxError>,
{
    if !shared.mcp {
        return None;
    }
    read(parts, body, shared.body_limit).await.ok()?.1
}

/// Reads and judges the body: a body with the same bytes and the message it
/// carries (`None` for an empty body), or the refusal.
pub(super) async fn read<B>(
    parts: &mut Parts,
    body: B,
    limit: usize,
) -> Result<(B, Option<Message>), Refused>
where
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // A body that says it has ended (no body, `Content-Length: 0`) is not
    // collected. What goes on is a new body either way, made of the bytes
    // judged here, so a body that said so wrongly forwards nothing.
    let bytes = if body.is_end_stream() {
        Bytes::new()
    } else {
        collect(body, limit).await?
    };
    check_framing(&parts.headers, !bytes.is_empty())?;
    let message = if bytes.is_empty() {
        None
    } else {
        Some(jsonrpc::read_message(&bytes).map_err(|r| refuse(r.code, r.message, &r.id))?)
    };
    routing_headers::check_and_normalize(&mut parts.headers, message.as_ref()).map_err(
        |mismatch| {
            let id = message.as_ref().map_or(&Value::Null, Message::id);
            refuse(HEADER_MISMATCH, mismatch, id)
        },
    )?;
    normalize(&mut parts.headers, bytes.len());
    Ok((B::from(bytes), message))
}

/// The whole body, at most `limit` bytes.
async fn collect<B>(body: B, limit: usize) -> Result<Bytes, Refused>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match data_of(Limited::new(body, limit)).await {
        Ok(bytes) => Ok(bytes),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(err) => {
            tracing::warn!(error = %err, "failed to read the request body");
            Err(refuse(PARSE_ERROR, "unreadable request body", &Value::Null))
        }
    }
}

/// The body's data frames joined (trailers, which nothing in MCP uses,
/// dropped). A body of one frame, the common request, is that frame itself:
/// no queue of frames and no copy, where `BodyExt::collect` keeps both.
async fn data_of<B: Body<Data = Bytes>>(body: B) -> Result<Bytes, B::Error> {
    let mut body = std::pin::pin!(body);
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if first.is_empty() {
            first = data;
        } else {
            joined
                .get_or_insert_with(|| BytesMut::from(&first[..]))
                .extend_from_slice(&data);
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// Headers that could make the upstream decode the bytes differently.
fn check_framing(headers: &HeaderMap, has_body: bool) -> Result<(), Refused> {
    let encoded = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(refuse(
            PARSE_ERROR,
            "Content-Encoding is not accepted: send the JSON-RPC message uncompressed",
            &Value::Null,
        ));
    }
    let transfer_coded = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if transfer_coded {
        return Err(refuse(
            PARSE_ERROR,
            "Transfer-Encoding other than chunked is not accepted",
            &Value::Null,
        ));
    }
    if has_body && !is_json_utf8(headers) {
        return Err(refuse(
            INVALID_REQUEST,
            "a body must be sent as Content-Type: application/json (charset utf-8 if any)",
            &Value::Null,
        ));
    }
    Ok(())
}

/// Exactly one Content-Type, `application/json` in any case, with no
/// parameter but `charset=utf-8`: a charset would make an upstream decode
/// the bytes as something else than what was judged.
fn is_json_utf8(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut pieces = value.split(';');
    let media_type = pieces.next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/json")
        && pieces.all(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return param.trim().is_empty();
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
        })
}

/// The headers the judged bytes go on with: `Content-Type:
/// application/json` and a `Content-Length` of `len`, no transfer or
/// content coding. A header that already says exactly that, in the one
/// spelling the layer would write, is kept rather than built again (the
/// common request: about 600 instructions a call).
fn normalize(headers: &mut HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONTENT_ENCODING);
    if len == 0 {
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_LENGTH);
        return;
    }
    if !only_value_is(headers, &header::CONTENT_TYPE, b"application/json") {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let mut digits = [0; 20];
    if !only_value_is(headers, &header::CONTENT_LENGTH, decimal(len, &mut digits)) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
}

/// `n` in decimal, written at the end of `digits` (no allocation, unlike a
/// `HeaderValue` made to compare with).
fn decimal(mut n: usize, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[start..];
        }
    }
}

/// Whether `name` has exactly one value, and it is `value` byte for byte.
fn only_value_is(headers: &HeaderMap, name: &header::HeaderName, value: &[u8]) -> bool {
    let mut values = headers.get_all(name).iter();
    values.next().is_some_and(|v| v.as_bytes() == value) && values.next().is_none()
}

/// A `400` JSON-RPC error answering `id`: a message the layer cannot read
/// one way, or routing headers it does not bear out.
pub(super) fn refuse(code: i64, message: &'static str, id: &Value) -> Refused {
    let reason = if code == HEADER_MISMATCH {
        VerifyCode::HeaderMismatch
    } else {
        VerifyCode::BadRequest
    };
    Refused::json_rpc(StatusCode::BAD_REQUEST, reason, id.clone(), code, message)
}

fn too_large() -> Refused {
    Refused::json_rpc(
        StatusCode::PAYLOAD_TOO_LARGE,
        VerifyCode::TooLarge,
        Value::Null,
        INVALID_REQUEST,
        "request body too large",
    )
}

#[cfg(test)]
#[path = "request_body_tests.rs"]
mod tests;
