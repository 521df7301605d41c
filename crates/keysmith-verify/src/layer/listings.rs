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
                Format::EventStream => events::filter(this.buffer, &this.key.allowed, eos),
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

mod events;

#[cfg(test)]
mod tests;
