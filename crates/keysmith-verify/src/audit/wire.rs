//! Audit events as a Keysmith server takes them in batches
//! (`POST /api/v1/audit-events`): what the remote writer sends and the
//! bounds the server holds every field to. The writer cuts a field to its
//! bound before sending, so one client's long tool name cannot get a whole
//! batch refused.

use serde::Serialize;

use super::AuditRecord;

/// Longest subject (tool, JSON-RPC method or `METHOD /path`), in bytes.
pub const MAX_SUBJECT_BYTES: usize = 512;
/// Longest request id, in bytes (the layer keeps no more of the header).
pub const MAX_REQUEST_ID_BYTES: usize = 128;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 500;
/// An event id: 16 to 64 of `[A-Za-z0-9_-]`.
pub const EVENT_ID_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Most microseconds a call may have taken (a day).
pub const MAX_DURATION_US: i64 = 86_400_000_000;
/// Longest OAuth client id, in bytes (a client ID metadata document's URL
/// is at most 2000 characters of ASCII).
pub const MAX_CLIENT_ID_BYTES: usize = 2000;

/// Whether `id` is a well-formed event id.
pub fn is_event_id(id: &str) -> bool {
    EVENT_ID_LEN.contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One event on the wire. The tenant is not in it: the server takes it from
/// the key that delivers the batch.
#[derive(Debug, Clone, Serialize)]
pub struct WireEvent<'a> {
    pub event_id: &'a str,
    pub key_id: &'a str,
    pub service_user_id: &'a str,
    pub subject: &'a str,
    /// `allowed` or `denied`.
    pub outcome: &'static str,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// RFC 3339, UTC, whole seconds.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<i64>,
    /// A call made with an OAuth access token: its grant and its client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
}

impl<'a> WireEvent<'a> {
    pub fn of(event_id: &'a str, record: &'a AuditRecord) -> Self {
        let at = time::OffsetDateTime::from_unix_timestamp(record.at.unix_timestamp())
            .unwrap_or(record.at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Self {
            event_id,
            key_id: &record.key_id,
            service_user_id: &record.service_user_id,
            subject: truncate(&record.tool, MAX_SUBJECT_BYTES),
            outcome: super::row::outcome(record.allowed),
            reason: record.reason,
            request_id: record
                .request_id
                .as_deref()
                .map(|id| truncate(id, MAX_REQUEST_ID_BYTES)),
            at,
            status: record.status.filter(|s| (100..=599).contains(s)),
            duration_us: record
                .duration_us
                .map(|us| i64::try_from(us).unwrap_or(i64::MAX).min(MAX_DURATION_US)),
            grant_id: record.grant_id.as_deref(),
            // A client id never gets this long; cut rather than lose the batch.
            client_id: record
                .client_id
                .as_deref()
                .map(|id| truncate(id, MAX_CLIENT_ID_BYTES)),
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(600), MAX_SUBJECT_BYTES).len(), 512);
    }

    #[test]
    fn event_ids_are_bounded_and_plain() {
        assert!(is_event_id("0123456789abcdefABCD"));
        assert!(!is_event_id("short"));
        assert!(!is_event_id(&"a".repeat(65)));
        assert!(!is_event_id("0123456789abcdef/../x"));
    }
}
