//! How an upstream's answer is read: its head, where its body ends, and the
//! body itself (RFC 9112 §6). Pure functions over the bytes read so far, so
//! that every rule is tested without a socket.
//!
//! The answer of one exchange must end exactly where the upstream meant it
//! to: the connection then carries the next client's exchange, and a byte
//! read into the wrong answer would hand one client another's. So whatever
//! two readers could frame differently is refused (a `502` to the client,
//! the connection closed): a `Content-Length` beside `Transfer-Encoding`,
//! a coding other than `chunked`, two lengths, a length that is not plain
//! digits, a chunk line ended by a bare LF, bytes after the answer's end.

use std::mem::MaybeUninit;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, response};
use bytes::{Buf, Bytes, BytesMut};

use crate::gateway::headers::{is_hop_by_hop, named_by_connection};

/// Header lines in an answer's head at most (hyper's default too).
const MAX_HEADERS: usize = 100;

/// An answer's head, or a chunked body's trailer section, larger than this
/// is refused rather than buffered without end.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// A chunk-size line (size and extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// An answer the gateway will not forward, and why (for the log: the client
/// is told only that the upstream's answer was unusable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upstream's answer is malformed: {0}")]
pub struct Malformed(pub &'static str);

/// A parsed answer head: what goes to the client (its connection-scoped
/// fields left out, RFC 9110 §7.6.1), and how its body is read.
#[derive(Debug)]
pub(super) struct Head {
    pub parts: response::Parts,
    pub body: Decoder,
    /// The connection may carry another exchange once this body has ended:
    /// HTTP/1.1, no `Connection: close`, and a body with a known end.
    pub reusable: bool,
}

/// Parses the answer head at the start of `read`, if it is all there, and
/// takes its bytes out of `read`. `None`: more bytes are needed. Interim
/// answers (`1xx` but `101`) are skipped; an upgrade is refused, the gateway
/// forwards no protocol switch.
pub(super) fn parse_head(read: &mut BytesMut, method: &Method) -> Result<Option<Head>, Malformed> {
    loop {
        // Uninitialized lines: no hundred empty headers written per answer.
        let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            read,
            &mut lines,
        ) {
            Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD => length,
            Ok(httparse::Status::Partial) if read.len() <= MAX_HEAD => return Ok(None),
            Ok(_) => return Err(Malformed("head too large")),
            Err(httparse::Error::TooManyHeaders) => return Err(Malformed("too many headers")),
            Err(_) => return Err(Malformed("unparsable head")),
        };
        let code = parsed.code.ok_or(Malformed("no status"))?;
        let status = StatusCode::from_u16(code).map_err(|_| Malformed("invalid status"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Malformed("protocol switch"));
        }
        if status.is_informational() {
            read.advance(length);
            continue;
        }
        let http11 = parsed.version == Some(1);
        // Where each name and value lies in the head, so that once the head
        // is taken out of the buffer the values are slices of it (no copy).
        // (`u32`: the head is at most `MAX_HEAD` long.)
        let base = read.as_ptr() as usize;
        let mut spans = [[0u32; 4]; MAX_HEADERS];
        let count = parsed.headers.len();
        let mut framing = Framing::default();
        for (span, line) in spans.iter_mut().zip(parsed.headers.iter()) {
            framing.note(line.name, line.value)?;
            let at = |field: &[u8]| (field.as_ptr() as usize - base) as u32;
            let (name, value) = (at(line.name.as_bytes()), at(line.value));
            *span = [
                name,
                name + line.name.len() as u32,
                value,
                value + line.value.len() as u32,
            ];
        }
        let head = read.split_to(length).freeze();
        let mut headers = HeaderMap::with_capacity(count);
        for span in &spans[..count] {
            let [name_start, name_end, value_start, value_end] = span.map(|at| at as usize);
            let name = HeaderName::from_bytes(&head[name_start..name_end])
                .map_err(|_| Malformed("invalid header name"))?;
            // This connection's own fields are read, never forwarded.
            if is_hop_by_hop(name.as_str()) || framing.named.contains(&name) {
                continue;
            }
            let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
                .map_err(|_| Malformed("invalid header value"))?;
            headers.append(name, value);
        }
        let body = framing.decoder(method, status)?;
        let reusable = http11 && !framing.close && body != Decoder::UntilClose;
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts.headers = headers;
        return Ok(Some(Head {
            parts,
            body,
            reusable,
        }));
    }
}

/// What an answer's header fields say about its body and its connection.
#[derive(Debug, Default)]
struct Framing {
    length: Option<u64>,
    chunked: bool,
    transfer_encodings: usize,
    close: bool,
    /// Fields `Connection` names: this connection's own, not forwarded.
    named: Vec<HeaderName>,
}

impl Framing {
    fn note(&mut self, name: &str, value: &[u8]) -> Result<(), Malformed> {
        if name.eq_ignore_ascii_case("content-length") {
            if self.length.is_some() {
                return Err(Malformed("two content lengths"));
            }
            self.length = Some(parse_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.transfer_encodings += 1;
            self.chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            self.close |= value
                .split(|&byte| byte == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
            self.named
                .extend(named_by_connection(std::iter::once(value)));
        }
        Ok(())
    }

    fn decoder(&self, method: &Method, status: StatusCode) -> Result<Decoder, Malformed> {
        // No body whatever the headers say (RFC 9112 §6.3, rule 1).
        if method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok(Decoder::Length(0));
        }
        match (self.transfer_encodings, self.length) {
            (0, Some(length)) => Ok(Decoder::Length(length)),
            (0, None) => Ok(Decoder::UntilClose),
            (1, None) if self.chunked => Ok(Decoder::Chunked(Chunk::Size)),
            (_, Some(_)) => Err(Malformed("both a length and a transfer coding")),
            _ => Err(Malformed("a transfer coding other than chunked")),
        }
    }
}

/// A `Content-Length` value: decimal digits only, no sign, no list.
fn parse_length(value: &[u8]) -> Result<u64, Malformed> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Malformed("invalid content length"));
    }
    Ok(value
        .iter()
        .fold(0, |length, digit| length * 10 + u64::from(digit - b'0')))
}

/// Where an answer's body stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decoder {
    /// This many bytes are still to come.
    Length(u64),
    /// Everything until the upstream closes the connection.
    UntilClose,
    Chunked(Chunk),
    /// A chunked body's end has been read.
    Ended,
}

/// Where a chunked body stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Chunk {
    /// A chunk-size line comes next.
    Size,
    /// This many bytes of the current chunk are still to come.
    Data(u64),
    /// The CRLF after a chunk's data comes next.
    DataEnd,
    /// The trailer section after the last chunk comes next.
    Trailers,
}

/// What one step of decoding gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Data(Bytes),
    /// More bytes must be read first.
    NeedMore,
    /// The body has ended, with these trailers if it carried any.
    End(Option<HeaderMap>),
}

impl Decoder {
    /// Whether the body has ended without another byte being read.
    pub(super) fn is_end(&self) -> bool {
        matches!(self, Self::Length(0) | Self::Ended)
    }

    /// The body's remaining length, when known.
    pub(super) fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(length) => Some(*length),
            Self::Ended => Some(0),
            _ => None,
        }
    }

    /// The next step of the body from the bytes in `read`, taken out of it.
    pub(super) fn step(&mut self, read: &mut BytesMut) -> Result<Step, Malformed> {
        loop {
            match self {
                Self::Length(0) | Self::Ended => return Ok(Step::End(None)),
                Self::Length(remaining) => {
                    if read.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let taken = take(read, remaining);
                    return Ok(Step::Data(taken));
                }
                Self::UntilClose if read.is_empty() => return Ok(Step::NeedMore),
                Self::UntilClose => return Ok(Step::Data(read.split().freeze())),
                Self::Chunked(chunk) => match chunk {
                    Chunk::Size => {
                        let Some(size) = chunk_size(read)? else {
                            return Ok(Step::NeedMore);
                        };
                        *chunk = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(remaining) => {
                        if read.is_empty() {
                            return Ok(Step::NeedMore);
                        }
                        let taken = take(read, remaining);
                        if *remaining == 0 {
                            *chunk = Chunk::DataEnd;
                        }
                        return Ok(Step::Data(taken));
                    }
                    Chunk::DataEnd => {
                        if read.len() < 2 {
                            return Ok(Step::NeedMore);
                        }
                        if &read[..2] != b"\r\n" {
                            return Err(Malformed("chunk data not ended by CRLF"));
                        }
                        read.advance(2);
                        *chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(trailers) = trailers(read)? else {
                            return Ok(Step::NeedMore);
                        };
                        *self = Self::Ended;
                        return Ok(Step::End(trailers));
                    }
                },
            }
        }
    }
}

/// Up to `remaining` bytes from the front of `read`, counted off.
fn take(read: &mut BytesMut, remaining: &mut u64) -> Bytes {
    let length = usize::try_from(*remaining).map_or(read.len(), |rest| rest.min(read.len()));
    *remaining -= length as u64;
    read.split_to(length).freeze()
}

/// A whole chunk-size line at the front of `read`, taken out: the size in
/// hexadecimal digits, then optional extensions (ignored), then CRLF.
fn chunk_size(read: &mut BytesMut) -> Result<Option<u64>, Malformed> {
    let Some(newline) = read.iter().position(|&byte| byte == b'\n') else {
        return if read.len() > MAX_CHUNK_LINE {
            Err(Malformed("chunk-size line too long"))
        } else {
            Ok(None)
        };
    };
    if newline > MAX_CHUNK_LINE {
        return Err(Malformed("chunk-size line too long"));
    }
    let line = &read[..newline];
    let Some(line) = line.strip_suffix(b"\r") else {
        return Err(Malformed("chunk-size line not ended by CRLF"));
    };
    let digits = line
        .iter()
        .take_while(|byte| byte.is_ascii_hexdigit())
        .count();
    if digits == 0 || digits > 16 {
        return Err(Malformed("invalid chunk size"));
    }
    let extensions = &line[digits..];
    let whitespace = extensions
        .iter()
        .take_while(|&&byte| byte == b' ' || byte == b'\t')
        .count();
    let extensions = &extensions[whitespace..];
    if !extensions.is_empty() && (extensions[0] != b';' || extensions.contains(&b'\r')) {
        return Err(Malformed("invalid chunk extension"));
    }
    let size = line[..digits].iter().fold(0u64, |size, &digit| {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        (size << 4) | u64::from(value)
    });
    read.advance(newline + 1);
    Ok(Some(size))
}

/// The trailer section after the last chunk, taken out of `read`: `None`
/// until it is all there; an empty section gives no trailers.
fn trailers(read: &mut BytesMut) -> Result<Option<Option<HeaderMap>>, Malformed> {
    if read.len() < 2 {
        return Ok(None);
    }
    if read.starts_with(b"\r\n") {
        read.advance(2);
        return Ok(Some(None));
    }
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (length, trailers) = match httparse::parse_headers(read, &mut lines) {
        Ok(httparse::Status::Complete((length, _))) if length > MAX_HEAD => {
            return Err(Malformed("trailers too large"));
        }
        Ok(httparse::Status::Complete((length, lines))) => {
            let mut trailers = HeaderMap::with_capacity(lines.len());
            for line in lines {
                let name = HeaderName::from_bytes(line.name.as_bytes())
                    .map_err(|_| Malformed("invalid trailer name"))?;
                let value = HeaderValue::from_bytes(line.value)
                    .map_err(|_| Malformed("invalid trailer value"))?;
                trailers.append(name, value);
            }
            (length, trailers)
        }
        Ok(httparse::Status::Partial) if read.len() <= MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(Malformed("trailers too large")),
        Err(_) => return Err(Malformed("unparsable trailers")),
    };
    read.advance(length);
    Ok(Some(Some(trailers)))
}

#[cfg(test)]
mod tests;
