//! The `audit_events` row: the one definition of its columns, and of how a
//! tool call fills them. Every writer uses it (the layer's SQLite,
//! PostgreSQL and pool writers, the server's own events, its import of a
//! remote gateway's calls, the remote writer's wire events), and the server
//! reads rows by the same list, so a column added or renamed is added or
//! renamed here, once.

use super::AuditRecord;

/// The columns written, in the order every writer gives their values.
pub const COLUMNS: &str = "tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at, status, duration_us, grant_id, client_id";

/// The `action` of every call the layer audits (admin actions name theirs).
pub const TOOL_CALL: &str = "tool.call";

/// The values a tool call binds, in [`CallRow`]'s order; `actor` and
/// `action` follow from them (see [`call_values`]).
pub const CALL_PARAMS: [&str; 12] = [
    "tenant_id",
    "key_id",
    "service_user_id",
    "tool",
    "outcome",
    "reason",
    "request_id",
    "at",
    "status",
    "duration_us",
    "grant_id",
    "client_id",
];

/// The values of one tool call's row for [`COLUMNS`], `param(n)` being the
/// SQL of its `n`th bound value (1-based, [`CALL_PARAMS`] order): the key
/// id is bound once and also names the actor (`key:<id>`), and the action
/// is [`TOOL_CALL`]. Without parentheses, so it serves a `VALUES` row and a
/// `SELECT` list alike.
pub fn call_values(p: impl Fn(usize) -> String) -> String {
    format!(
        "{}, {}, {}, 'key:' || {}, '{TOOL_CALL}', {}, {}, {}, {}, {}, {}, {}, {}, {}",
        p(1),
        p(2),
        p(3),
        p(2),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9),
        p(10),
        p(11),
        p(12)
    )
}

/// What the `outcome` column says of a call.
pub fn outcome(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

/// A tool call's bound values, in [`CALL_PARAMS`] order, borrowed from
/// what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRow<'a> {
    pub tenant_id: &'a str,
    pub key_id: &'a str,
    pub service_user_id: &'a str,
    /// The tool, the JSON-RPC method, or `METHOD /path`.
    pub tool: &'a str,
    pub outcome: &'static str,
    pub reason: &'a str,
    pub request_id: Option<&'a str>,
    /// Unix seconds.
    pub at: i64,
    pub status: Option<i64>,
    pub duration_us: Option<i64>,
    /// A token's grant and client (see [`AuditRecord`]); `None` for a key.
    pub grant_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

#[cfg(feature = "sql")]
impl<'a> CallRow<'a> {
    /// Binds the row's values, in order, to a query through sqlx's `Any`
    /// driver (the layer's pool writer, the server's import).
    pub fn bind_to<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>
    where
        'a: 'q,
    {
        query
            .bind(self.tenant_id)
            .bind(self.key_id)
            .bind(self.service_user_id)
            .bind(self.tool)
            .bind(self.outcome)
            .bind(self.reason)
            .bind(self.request_id)
            .bind(self.at)
            .bind(self.status)
            .bind(self.duration_us)
            .bind(self.grant_id)
            .bind(self.client_id)
    }
}

impl AuditRecord {
    /// The row this record is written as.
    pub fn row(&self) -> CallRow<'_> {
        CallRow {
            tenant_id: &self.tenant_id,
            key_id: &self.key_id,
            service_user_id: &self.service_user_id,
            tool: &self.tool,
            outcome: outcome(self.allowed),
            reason: self.reason,
            request_id: self.request_id.as_deref(),
            at: crate::timestamp::to_unix(self.at),
            status: self.status.map(i64::from),
            duration_us: self
                .duration_us
                .map(|us| i64::try_from(us).unwrap_or(i64::MAX)),
            grant_id: self.grant_id.as_deref(),
            client_id: self.client_id.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp;

    #[test]
    fn a_call_fills_every_column_once() {
        let columns: Vec<&str> = COLUMNS.split(", ").collect();
        let values = call_values(|n| format!("?{n}"));
        let values: Vec<&str> = values.split(", ").collect();
        assert_eq!(columns.len(), values.len(), "{values:?}");
        let at =
            |column: &str| values[columns.iter().position(|c| *c == column).expect("a column")];
        assert_eq!(at("actor"), "'key:' || ?2");
        assert_eq!(at("action"), "'tool.call'");
        // Every bound value lands in the column it is named after.
        for (n, param) in CALL_PARAMS.iter().enumerate() {
            assert_eq!(at(param), format!("?{}", n + 1), "{param}");
        }
    }

    #[test]
    fn a_record_is_written_as_its_row() {
        let record = AuditRecord {
            tenant_id: "t1".into(),
            key_id: "k1".into(),
            service_user_id: "s1".into(),
            grant_id: None,
            client_id: Some("kc_1".into()),
            tool: "echo".into(),
            allowed: false,
            reason: "rate_limited",
            request_id: None,
            at: timestamp::from_unix(1_700_000_000),
            status: Some(429),
            duration_us: Some(u64::MAX),
        };
        let row = record.row();
        assert_eq!(row.outcome, "denied");
        assert_eq!(row.at, 1_700_000_000);
        assert_eq!(row.status, Some(429));
        assert_eq!(row.duration_us, Some(i64::MAX), "clamped, not wrapped");
        assert_eq!((row.grant_id, row.client_id), (None, Some("kc_1")));
    }
}
