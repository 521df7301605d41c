//! A Server-Sent Events answer, filtered event by event: each event's
//! `data` lines joined, filtered as one message, written back as one line.

use bytes::{Bytes, BytesMut};

use super::{Filtered, filter_message};
use crate::allowlist::Capabilities;

/// Takes every complete event out of `buffer` (all of it at the end of the
/// stream) and gives back their filtered text.
pub(super) fn filter(buffer: &mut BytesMut, allowed: &Capabilities, eos: bool) -> Option<Bytes> {
    let mut out = Vec::new();
    while let Some(end) = event_end(buffer, eos) {
        let event = buffer.split_to(end);
        rewrite_event(&event, allowed, &mut out);
    }
    if eos && !buffer.is_empty() {
        let event = buffer.split();
        rewrite_event(&event, allowed, &mut out);
    }
    (!out.is_empty()).then(|| Bytes::from(out))
}

/// Where the first complete event ends (after its blank line). Lines end in
/// CRLF, LF or CR, as the SSE specification allows; a CR at the end of the
/// buffer may be the first half of a CRLF, so it waits for more.
fn event_end(buffer: &[u8], eos: bool) -> Option<usize> {
    let mut line_start = 0;
    let mut i = 0;
    while i < buffer.len() {
        let terminator = match buffer[i] {
            b'\n' => 1,
            b'\r' if buffer.get(i + 1) == Some(&b'\n') => 2,
            b'\r' if i + 1 == buffer.len() && !eos => return None,
            b'\r' => 1,
            _ => {
                i += 1;
                continue;
            }
        };
        if line_start == i {
            return Some(i + terminator);
        }
        i += terminator;
        line_start = i;
    }
    None
}

fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let at = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        let (line, next) = match at {
            None => (rest, &rest[rest.len()..]),
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => {
                (&rest[..i], &rest[i + 2..])
            }
            Some(i) => (&rest[..i], &rest[i + 1..]),
        };
        rest = next;
        Some(line)
    })
}

/// One event: its `data` lines joined, filtered, and written back as one
/// `data:` line; other fields (`event`, `id`, comments) kept. An event whose
/// data is not JSON is dropped rather than passed on unread.
fn rewrite_event(event: &[u8], allowed: &Capabilities, out: &mut Vec<u8>) {
    let mut data: Option<Vec<u8>> = None;
    let mut fields = Vec::new();
    for line in lines(event).filter(|l| !l.is_empty()) {
        let value = if line == b"data" {
            Some(&b""[..])
        } else {
            line.strip_prefix(b"data:")
                .map(|v| v.strip_prefix(b" ").unwrap_or(v))
        };
        match (value, &mut data) {
            (Some(v), Some(joined)) => {
                joined.push(b'\n');
                joined.extend_from_slice(v);
            }
            (Some(v), None) => data = Some(v.to_vec()),
            (None, _) => fields.push(line),
        }
    }
    // Empty data (a resumable stream's priming event) carries no message.
    let data = match data {
        Some(d) if !d.iter().all(u8::is_ascii_whitespace) => match filter_message(&d, allowed) {
            Filtered::Unchanged => Some(d),
            Filtered::Rewritten(filtered) => Some(filtered),
            Filtered::Unreadable => return,
        },
        other => other,
    };
    for field in fields {
        out.extend_from_slice(field);
        out.push(b'\n');
    }
    // One `data:` line per line of the data, as it was joined.
    for line in data.iter().flat_map(|d| d.split(|&b| b == b'\n')) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}
