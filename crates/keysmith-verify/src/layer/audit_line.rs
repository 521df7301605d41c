//! The one place an audit line is built, and how it is written: at once
//! for a refusal, or once the answer's head is back for a call that went
//! on ([`PendingAudit`]), by the layer and forward-auth alike.

use std::{sync::Arc, time::Instant};

use http::{HeaderName, Method, StatusCode, request::Parts};

use super::{jsonrpc::Message, refused::Refused, shared::Shared};
use crate::{audit::AuditRecord, identity::AuditIds, outcome::VerifyCode, telemetry};

/// The client's request id, kept in the audit line.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id kept in the audit log.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What an audit line names the request by (made into a string only when
/// there is an audit sink).
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject<'a> {
    /// The tool of a `tools/call`, the method of any other message.
    Message(&'a Message),
    /// `METHOD /path` of the request's own head: it carries no message, or
    /// its body was refused unread.
    Head,
    /// `METHOD /path` of a request another proxy holds (forward-auth).
    Told(&'a Method, &'a str),
}

impl<'a> Subject<'a> {
    /// The message's subject, else `METHOD /path`.
    pub(super) fn of(message: Option<&'a Message>) -> Self {
        message.map_or(Self::Head, Self::Message)
    }

    fn name(self, parts: &Parts) -> String {
        match self {
            Self::Message(message) => message.subject().to_owned(),
            Self::Head => method_and_path(parts.method.as_str(), parts.uri.path()),
            Self::Told(method, path) => method_and_path(method.as_str(), path),
        }
    }
}

/// `METHOD /path`, what the audit names a request without a message.
fn method_and_path(method: &str, path: &str) -> String {
    // Built by hand: `format!` costs several times as much, on every request.
    let mut subject = String::with_capacity(method.len() + 1 + path.len());
    subject.push_str(method);
    subject.push(' ');
    subject.push_str(path);
    subject
}

/// The audit line of a request, before its outcome is known (`None`
/// without an audit sink).
// Out of line: a stage a profile names (scripts/bench-instructions).
#[inline(never)]
pub(super) fn line(
    shared: &Shared,
    parts: &Parts,
    ids: &AuditIds,
    subject: Subject<'_>,
    code: VerifyCode,
) -> Option<AuditRecord> {
    shared.audit.as_ref()?;
    Some(record_of(shared, parts, ids, subject.name(parts), code))
}

/// [`line`] for the message's last use (a call that goes on): its tool or
/// method moves into the line, where [`line`] would copy it.
// Out of line: a stage a profile names (scripts/bench-instructions).
#[inline(never)]
pub(super) fn line_taking(
    shared: &Shared,
    parts: &Parts,
    ids: &AuditIds,
    message: Option<Message>,
    code: VerifyCode,
) -> Option<AuditRecord> {
    shared.audit.as_ref()?;
    let tool = match message {
        Some(message) => message.into_subject(),
        None => Subject::Head.name(parts),
    };
    Some(record_of(shared, parts, ids, tool, code))
}

fn record_of(
    shared: &Shared,
    parts: &Parts,
    ids: &AuditIds,
    tool: String,
    code: VerifyCode,
) -> AuditRecord {
    AuditRecord {
        tenant_id: ids.tenant_id.clone(),
        key_id: ids.key_id.clone(),
        service_user_id: ids.service_user_id.clone(),
        grant_id: ids.grant_id.clone(),
        client_id: ids.client_id.clone(),
        tool,
        allowed: code == VerifyCode::Valid,
        reason: code.as_str(),
        request_id: parts
            .headers
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|id| truncate(id, MAX_REQUEST_ID_LEN).to_owned()),
        at: shared.clock.now(),
        status: None,
        duration_us: None,
    }
}

/// Counts and audits a verified key's refused request (one line, so every
/// attempt a genuine key makes is in its trail); the refusal goes on to be
/// answered.
pub(super) async fn refuse(
    shared: &Shared,
    parts: &Parts,
    ids: &AuditIds,
    subject: Subject<'_>,
    refused: Refused,
    started: Instant,
) -> Refused {
    telemetry::request(refused.reason().as_str());
    let line = line(shared, parts, ids, subject, refused.reason());
    record(shared, line, Some(refused.status()), started).await;
    refused
}

/// Queues `line` with its outcome (waiting for room: backpressure, no loss).
pub(super) async fn record(
    shared: &Shared,
    line: Option<AuditRecord>,
    status: Option<StatusCode>,
    started: Instant,
) {
    let (Some(sink), Some(mut line)) = (&shared.audit, line) else {
        return;
    };
    line.status = status.map(|s| s.as_u16());
    line.duration_us = Some(elapsed_us(started));
    sink.record(line).await;
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The audit line of a call on its way to the inner service: written when
/// the answer's head is back, or by its drop if the client goes away first,
/// so every verified call has its line.
pub(super) struct PendingAudit {
    shared: Arc<Shared>,
    line: Option<AuditRecord>,
    started: Instant,
}

impl PendingAudit {
    pub(super) fn new(shared: Arc<Shared>, line: Option<AuditRecord>, started: Instant) -> Self {
        Self {
            shared,
            line,
            started,
        }
    }

    pub(super) async fn finish(mut self, status: Option<StatusCode>) {
        let line = self.line.take();
        record(&self.shared, line, status, self.started).await;
    }

    /// Writes the line with `status` if the queue has room now (`true`),
    /// else keeps it for [`PendingAudit::finish`], which waits for room.
    // Out of line: a stage a profile names (scripts/bench-instructions).
    #[inline(never)]
    pub(super) fn try_finish(&mut self, status: StatusCode) -> bool {
        let (Some(sink), Some(mut line)) = (&self.shared.audit, self.line.take()) else {
            return true;
        };
        line.status = Some(status.as_u16());
        line.duration_us = Some(elapsed_us(self.started));
        match sink.try_record(line) {
            Ok(()) => true,
            Err(line) => {
                self.line = Some(line);
                false
            }
        }
    }
}

impl Drop for PendingAudit {
    /// The request was dropped before its answer (the client went away, or
    /// the inner service failed): the call still ran, so its line is
    /// written, without a status.
    fn drop(&mut self) {
        if let (Some(sink), Some(mut line)) = (&self.shared.audit, self.line.take()) {
            line.duration_us = Some(elapsed_us(self.started));
            sink.record_detached(line);
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn head(method: &str, uri: &str) -> Parts {
        let request = Request::builder().method(method).uri(uri).body(());
        request.expect("request").into_parts().0
    }

    #[test]
    fn a_request_without_a_message_is_named_by_its_method_and_path() {
        let parts = head("DELETE", "/mcp?x=1");
        assert_eq!(Subject::Head.name(&parts), "DELETE /mcp");
        assert_eq!(
            Subject::Told(&Method::GET, "/sse?y").name(&parts),
            "GET /sse?y"
        );
        assert!(matches!(Subject::of(None), Subject::Head));
    }

    #[test]
    fn long_request_ids_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 8), "abc");
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("ééé", 4), "éé");
    }
}
