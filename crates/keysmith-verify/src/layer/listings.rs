//! Listings filtered to the key's allowlists, so an agent never sees a
//! tool, resource, resource template or prompt it may not use.
//!
//! The filter goes by what an answer carries, not by what was asked: a
//! client routes answers by their JSON-RPC id, and ids can collide (the
//! Python SDK's stateful transport keys its streams by `str(id)`, so a
//! `ping` with id `"502"` can receive the answer to `tools/list` id `502`).
//! So for a key that names any allowlist, every answer is read: any
//! JSON-RPC result (a batch's included) with a listing ([`LISTINGS`]:
//! `tools` and `prompts` by `name`, `resources` by `uri`,
//! `resourceTemplates` by `uriTemplate`), member names compared as the most
//! lenient parser does (`Result`, `toolſ`), loses the entries the key may
//! not use. An entry is kept only when it has the naming member and every
//! member of that name (any case) is allowed; a template only when every
//! URI it can expand to is (see [`crate::allowlist`]'s `uri` rules).
//!
//! The answer is a JSON body or a Server-Sent Events stream whose events carry
//! JSON-RPC messages. Events stream through one by one; each event's `data` is
//! written back as read unless it holds a result, which is rewritten from the
//! parsed message (one reading for every client). What cannot be read is not
//! passed on: a JSON body becomes a JSON-RPC error (the status kept), an event
//! whose data is not JSON is dropped; an empty body or empty data passes.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, header};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use serde_json::Value;

use super::{
    body::{BoxError, LayerBody},
    jsonrpc::{Message, same_member},
};
use crate::{allowlist::Capabilities, outcome::VerifiedKey};

/// The most buffered while waiting for the end of a JSON body or of one event.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// How the upstream answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    EventStream,
}

/// A listing a result may carry: its member, the member of each entry that
/// names the entry, and whether the key may see an entry so named.
pub struct Listing {
    pub member: &'static str,
    pub named_by: &'static str,
    pub may_see: fn(&Capabilities, &str) -> bool,
}

/// Every listing MCP defines.
pub const LISTINGS: [Listing; 4] = [
    Listing {
        member: "tools",
        named_by: "name",
        may_see: |allowed, name| allowed.tools().allows(name),
    },
    Listing {
        member: "prompts",
        named_by: "name",
        may_see: |allowed, name| allowed.prompts().allows(name),
    },
    Listing {
        member: "resources",
        named_by: "uri",
        may_see: |allowed, uri| allowed.resources().allows(uri),
    },
    Listing {
        member: "resourceTemplates",
        named_by: "uriTemplate",
        may_see: |allowed, template| allowed.resources().covers_template(template),
    },
];

/// The filter a request's answer goes through (`None`: passed untouched).
#[derive(Debug)]
pub(super) struct ListingFilter {
    allowed: Arc<VerifiedKey>,
    /// The request's id, for the error that replaces an unreadable answer.
    id: Value,
}

/// Every answer to a key that names an allowlist, in MCP mode (a route
/// that is not MCP enforces no allowlist).
pub(super) fn filter_for(
    mcp: bool,
    key: &Arc<VerifiedKey>,
    message: Option<&Message>,
) -> Option<ListingFilter> {
    let limited = mcp && key.allowed.is_limited();
    limited.then(|| ListingFilter {
        allowed: key.clone(),
        id: message.map_or(Value::Null, |m| m.id().clone()),
    })
}

impl ListingFilter {
    /// The answer, its body filtered.
    pub(super) fn apply<B>(self, response: Response<B>) -> Response<LayerBody<B>> {
        let (mut parts, body) = response.into_parts();
        let encoded = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let event_stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
            });
        // A compressed answer cannot be read: it is replaced by an error.
        let format = if event_stream && !encoded {
            Format::EventStream
        } else {
            Format::Json
        };
        if format == Format::Json {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = FilteredBody::new(body, self.allowed, format, self.id);
        Response::from_parts(parts, LayerBody::Filtered { body })
    }
}

pin_project! {
    #[derive(Debug)]
    pub struct FilteredBody<B> {
        #[pin]
        inner: B,
        // Whose allowlists the listings are cut to.
        key: Arc<VerifiedKey>,
        format: Format,
        // The request's id, for the error that replaces an unreadable answer.
        id: Value,
        buffer: BytesMut,
        done: bool,
    }
}

impl<B> FilteredBody<B> {
    pub fn new(inner: B, key: Arc<VerifiedKey>, format: Format, id: Value) -> Self {
        Self {
            inner,
            key,
            format,
            id,
            buffer: BytesMut::new(),
            done: false,
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl<B> Body for FilteredBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            let eos = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err.into()))),
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are dropped: nothing in MCP uses them.
                    if let Ok(data) = frame.into_data() {
                        this.buffer.extend_from_slice(&data);
                    }
                    false
                }
                Poll::Ready(None) => {
                    *this.done = true;
                    true
                }
            };
            let out = match this.format {
                Format::Json if eos => {
                    Some(filter_json_body(this.buffer, &this.key.allowed, this.id))
                }
                Format::Json => None,
                Format::EventStream => filter_events(this.buffer, &this.key.allowed, eos),
            };
            if this.buffer.len() > MAX_BUFFERED {
                *this.done = true;
                return Poll::Ready(Some(Err("answer too large to read for listings".into())));
            }
            match out {
                Some(bytes) if !bytes.is_empty() => {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                _ if eos => return Poll::Ready(None),
                _ => {}
            }
        }
    }
}

/// The whole JSON answer, filtered, or a JSON-RPC error in its place.
fn filter_json_body(buffer: &mut BytesMut, allowed: &Capabilities, id: &Value) -> Bytes {
    let body = buffer.split().freeze();
    if body.is_empty() {
        // A `202 Accepted`, a `204`: nothing a client reads.
        return body;
    }
    match filter_message(&body, allowed) {
        Filtered::Unchanged => body,
        Filtered::Rewritten(filtered) => Bytes::from(filtered),
        Filtered::Unreadable => {
            let message = "the answer could not be read to filter it to this key's allowlists";
            Bytes::from(super::refused::json_rpc_error(id, -32603, message))
        }
    }
}

/// What a message becomes for a key that names an allowlist.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// It carries no result: passed on as it came.
    Unchanged,
    /// It carries a result: written again from what was read, every
    /// listing in it cut to the allowlists.
    Rewritten(Vec<u8>),
    /// Not JSON: never passed on.
    Unreadable,
}

/// Filters one JSON-RPC message, or a batch of them.
pub fn filter_message(message: &[u8], allowed: &Capabilities) -> Filtered {
    let Ok(mut value) = serde_json::from_slice::<Value>(message) else {
        return Filtered::Unreadable;
    };
    if !carries_result(&value) {
        return Filtered::Unchanged;
    }
    cut_listings(&mut value, allowed);
    serde_json::to_vec(&value).map_or(Filtered::Unreadable, Filtered::Rewritten)
}

/// Whether `value` is a result (or a batch holding one), its members named
/// in any case.
fn carries_result(value: &Value) -> bool {
    match value {
        Value::Array(batch) => batch.iter().any(carries_result),
        Value::Object(members) => members.keys().any(|name| same_member(name, "result")),
        _ => false,
    }
}

/// Removes from every listing of every result (any case, a batch's too)
/// each entry that is not surely one the key may use.
fn cut_listings(value: &mut Value, allowed: &Capabilities) {
    let members = match value {
        Value::Array(batch) => return batch.iter_mut().for_each(|m| cut_listings(m, allowed)),
        Value::Object(members) => members,
        _ => return,
    };
    let results = members
        .iter_mut()
        .filter(|(name, _)| same_member(name, "result"))
        .filter_map(|(_, result)| result.as_object_mut());
    for result in results {
        for (name, entries) in result.iter_mut() {
            let Some(entries) = entries.as_array_mut() else {
                continue;
            };
            for listing in LISTINGS.iter().filter(|l| same_member(name, l.member)) {
                entries.retain(|entry| may_be_listed(entry, listing, allowed));
            }
        }
    }
}

/// Whether `entry` has the member that names it, and every member of that
/// name (any case) names something the key may use.
fn may_be_listed(entry: &Value, listing: &Listing, allowed: &Capabilities) -> bool {
    let Some(members) = entry.as_object() else {
        return false;
    };
    let mut names = members
        .iter()
        .filter(|(name, _)| same_member(name, listing.named_by))
        .map(|(_, value)| {
            value
                .as_str()
                .is_some_and(|n| (listing.may_see)(allowed, n))
        })
        .peekable();
    names.peek().is_some() && names.all(|may| may)
}

/// Takes every complete event out of `buffer` (all of it at the end of the
/// stream) and gives back their filtered text.
fn filter_events(buffer: &mut BytesMut, allowed: &Capabilities, eos: bool) -> Option<Bytes> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{allowlist::Allowlist, timestamp};
    use http_body_util::{BodyExt, StreamBody};

    /// A key with these lists (empty: not named).
    fn with(tools: &[&str], resources: &[&str], prompts: &[&str]) -> Arc<VerifiedKey> {
        fn list<P: crate::allowlist::Pattern>(entries: &[&str]) -> Allowlist<P> {
            if entries.is_empty() {
                Allowlist::any()
            } else {
                Allowlist::from_list(entries).expect("valid")
            }
        }
        Arc::new(VerifiedKey {
            key_id: "k".into(),
            tenant_id: "t".into(),
            tenant_slug: "t".into(),
            service_user_id: "s".into(),
            service_user_name: "s".into(),
            valid_until: timestamp::from_unix(4_000_000_000),
            scopes: vec![],
            allowed: Capabilities::new(list(tools), list(resources), list(prompts)),
            limits: Default::default(),
            token: None,
        })
    }

    fn only(tools: &[&str]) -> Arc<VerifiedKey> {
        with(tools, &[], &[])
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"secret_admin"},{"name":"files/read"}]}}"#;

    async fn run(chunks: Vec<&'static [u8]>, format: Format, allow: &Arc<VerifiedKey>) -> String {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(c))));
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let filter = FilteredBody::new(body, allow.clone(), format, Value::from(1));
        let bytes = filter.collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn json_answers_keep_only_allowed_tools() {
        let out = run(
            vec![&LIST.as_bytes()[..40], &LIST.as_bytes()[40..]],
            Format::Json,
            &only(&["echo", "files/*"]),
        )
        .await;
        let value: Value = serde_json::from_str(&out).expect("json");
        let names: Vec<&str> = value["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["echo", "files/read"]);
        let unreadable = run(vec![b"<html>tools</html>"], Format::Json, &only(&["echo"])).await;
        assert!(unreadable.contains("-32603"), "{unreadable}");
        assert!(!unreadable.contains("tools</html>"));
    }

    #[tokio::test]
    async fn events_are_filtered_one_by_one_whatever_the_line_endings() {
        let allow = only(&["echo"]);
        let stream: &'static str = "event: message\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n: keep-alive\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\r\ndata: \"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"secret_admin\"}]}}\r\rdata: not json secret_admin\n\n";
        let bytes = stream.as_bytes();
        // Split everywhere, including between a CR and its LF.
        for at in 1..bytes.len() {
            let (a, b) = bytes.split_at(at);
            let a: &'static [u8] = a;
            let b: &'static [u8] = b;
            let out = run(vec![a, b], Format::EventStream, &allow).await;
            assert!(!out.contains("secret_admin"), "split at {at}: {out}");
            assert!(out.contains(r#"{"name":"echo"}"#), "split at {at}: {out}");
            assert!(
                out.contains("notifications/progress"),
                "split at {at}: {out}"
            );
            assert!(
                out.contains("event: message\nid: 7\n"),
                "split at {at}: {out}"
            );
            assert!(out.contains(": keep-alive\n\n"), "split at {at}: {out}");
        }
    }

    /// The names (or URIs) a listing kept.
    fn kept(answer: &str, listing: &str, named_by: &str) -> Vec<String> {
        let value: Value = serde_json::from_str(answer).expect("json");
        value["result"][listing]
            .as_array()
            .expect(listing)
            .iter()
            .filter_map(|entry| entry[named_by].as_str().map(str::to_owned))
            .collect()
    }

    const EVERY_LISTING: &str = r#"{"jsonrpc":"2.0","id":1,"result":{
        "tools":[{"name":"echo"}],
        "prompts":[{"name":"greet"},{"name":"admin_prompt"},{"title":"no name"}],
        "resources":[{"uri":"file:///public/a.txt"},{"uri":"file:///public/../secret"},{"uri":"file:///secret"},{"uri":"file:///public/b","URI":"file:///secret"}],
        "resourceTemplates":[{"uriTemplate":"file:///public/{name}"},{"uriTemplate":"file:///{path}"},{"uriTemplate":"file:///public/{a}/../x"}]}}"#;

    #[tokio::test]
    async fn every_listing_keeps_only_what_the_key_may_use() {
        let key = with(&[], &["file:///public/*"], &["greet"]);
        let out = run(vec![EVERY_LISTING.as_bytes()], Format::Json, &key).await;
        assert_eq!(
            kept(&out, "tools", "name"),
            Vec::<String>::new(),
            "no tool named: none listed"
        );
        assert_eq!(kept(&out, "prompts", "name"), ["greet"]);
        assert_eq!(kept(&out, "resources", "uri"), ["file:///public/a.txt"]);
        assert_eq!(
            kept(&out, "resourceTemplates", "uriTemplate"),
            ["file:///public/{name}"]
        );

        // A key that names only tools sees no resource, template or prompt.
        let tools_only = run(
            vec![EVERY_LISTING.as_bytes()],
            Format::Json,
            &only(&["echo"]),
        )
        .await;
        assert_eq!(kept(&tools_only, "tools", "name"), ["echo"]);
        for (listing, named_by) in [
            ("prompts", "name"),
            ("resources", "uri"),
            ("resourceTemplates", "uriTemplate"),
        ] {
            assert!(
                kept(&tools_only, listing, named_by).is_empty(),
                "{listing}: {tools_only}"
            );
        }
        // Member names in another case are listings too.
        let folded = r#"{"jsonrpc":"2.0","id":1,"Result":{"Resources":[{"uri":"file:///secret"}],"PROMPTS":[{"name":"x"}]}}"#;
        let out = run(vec![folded.as_bytes()], Format::Json, &key).await;
        assert!(!out.contains("secret") && !out.contains(r#""x""#), "{out}");
    }
}
