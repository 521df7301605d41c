//! What happened and how much: the audit log (admin actions, and one event per
//! tool call from the verification layer), its rollups by day, hour and minute,
//! the usage read from them, and the latency histogram they keep per tool.

use std::sync::LazyLock;

use keysmith_verify::audit::row;
use sqlx::{Any, Executor};
use time::OffsetDateTime;

use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{
        KeyId, ServiceUserId, TenantId, UnixTime,
        values::page::{self, Page},
    },
};

pub mod imported;
pub mod latency_histogram;
pub mod rollups;
pub mod usage;

/// An event about to be written.
#[derive(Debug)]
pub struct NewAuditEvent<'a> {
    pub tenant_id: &'a TenantId,
    pub key_id: Option<&'a KeyId>,
    pub service_user_id: Option<&'a ServiceUserId>,
    pub actor: String,
    pub action: &'a str,
    pub tool: Option<&'a str>,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub at: OffsetDateTime,
}

impl<'a> NewAuditEvent<'a> {
    /// An admin action on one key that succeeded (no tool, no request id).
    pub fn key_action(
        tenant_id: &'a TenantId,
        key: (&'a KeyId, &'a ServiceUserId),
        actor: &crate::domain::Actor,
        action: &'a str,
        reason: Option<&'a str>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id,
            key_id: Some(key.0),
            service_user_id: Some(key.1),
            actor: actor.to_string(),
            action,
            tool: None,
            outcome: "ok",
            reason,
            request_id: None,
            at,
        }
    }
}

impl<'a> NewAuditEvent<'a> {
    /// An admin action on the tenant itself (its people, webhooks, policy)
    /// that succeeded: no key, no tool, no request id.
    pub fn tenant_action(
        tenant_id: &'a TenantId,
        actor: &crate::domain::Actor,
        action: &'a str,
        reason: Option<&'a str>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id,
            key_id: None,
            service_user_id: None,
            actor: actor.to_string(),
            action,
            tool: None,
            outcome: "ok",
            reason,
            request_id: None,
            at,
        }
    }
}

/// Rows deleted per statement when old tool calls are purged: small enough
/// that a purge never holds the write lock for long.
const PURGE_BATCH: i64 = 1000;
/// Statements per purge, so one tick stays short after a long outage; the
/// next tick goes on where this one stopped.
const PURGE_BATCHES: usize = 50;

/// Deletes per-call audit events (`tool.call`) older than `retention_days`,
/// in small batches; admin actions are kept. A day not rolled up yet keeps
/// its raw rows (and so does every later one) until it is. Returns how many went.
#[tracing::instrument(skip(pool))]
pub async fn purge_old_calls(
    pool: &sqlx::AnyPool,
    now: OffsetDateTime,
    retention_days: i64,
) -> DomainResult<u64> {
    let retention_cutoff = UnixTime::from(now - time::Duration::days(retention_days)).secs();
    let cutoff = rollups::unrolled_days(pool, retention_cutoff, 1)
        .await?
        .first()
        .map_or(retention_cutoff, |&day| day.min(retention_cutoff));
    let mut purged = 0;
    for _ in 0..PURGE_BATCHES {
        let done = sqlx::query(
            // The day check again, per row: rows stamped in the past may
            // have been written since the cutoff was read.
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE action = 'tool.call' AND at < $1 \
              AND EXISTS (SELECT 1 FROM audit_rollup_days d WHERE d.day = at - at % 86400) LIMIT $2)",
        )
        .bind(cutoff)
        .bind(PURGE_BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        purged += done;
        if done < PURGE_BATCH as u64 {
            break;
        }
    }
    if purged > 0 {
        tracing::info!(purged, "old tool-call audit events purged");
    }
    Ok(purged)
}

/// One event, every column of [`row::COLUMNS`] bound in its order.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    let params: Vec<String> = (1..=row::COLUMNS.split(", ").count())
        .map(|n| format!("${n}"))
        .collect();
    format!(
        "INSERT INTO audit_events ({}) VALUES ({})",
        row::COLUMNS,
        params.join(", ")
    )
});

pub async fn record<'e>(
    executor: impl Executor<'e, Database = Any>,
    event: NewAuditEvent<'_>,
) -> DomainResult<()> {
    sqlx::query(&INSERT)
        .bind(event.tenant_id)
        .bind(event.key_id)
        .bind(event.service_user_id)
        .bind(event.actor)
        .bind(event.action)
        .bind(event.tool)
        .bind(event.outcome)
        .bind(event.reason)
        .bind(event.request_id)
        .bind(UnixTime::from(event.at))
        // An admin action has no answer status nor duration, and is made
        // with no access token (its grant and client are in its subject).
        .bind(None::<i64>)
        .bind(None::<i64>)
        .bind(None::<&str>)
        .bind(None::<&str>)
        .execute(executor)
        .await?;
    Ok(())
}

/// An event as stored (the API's shape of it lives with its routes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub key_id: Option<KeyId>,
    pub service_user_id: Option<ServiceUserId>,
    pub actor: String,
    pub action: String,
    pub tool: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub at: UnixTime,
    /// Tool calls: the HTTP status answered (upstream or refusal).
    pub status: Option<i64>,
    /// Tool calls: microseconds until the answer's headers.
    pub duration_us: Option<i64>,
    /// Tool calls made with an OAuth access token: the grant it was issued
    /// under (authorization code; none for client credentials).
    pub grant_id: Option<String>,
    /// Tool calls made with an OAuth access token: the client it was
    /// issued to (for client credentials, the key's id).
    pub client_id: Option<String>,
}

/// Which of a key's events a reader wants: people's actions on the key are
/// few and drown among its tool calls, and refusals are what a security
/// team looks for first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditKind {
    #[default]
    All,
    /// Lifecycle and settings: created, rotated, revoked, limits changed…
    Admin,
    /// Requests made with the key, allowed or refused.
    Calls,
    /// Requests made with the key and refused.
    Refusals,
}

impl AuditKind {
    pub const ALL: [Self; 4] = [Self::All, Self::Admin, Self::Calls, Self::Refusals];

    /// `all`, `admin`, `calls` or `refusals`; absent means `all`.
    pub fn parse(raw: Option<&str>) -> DomainResult<Self> {
        match raw {
            None => Ok(Self::All),
            Some(raw) => Self::ALL
                .into_iter()
                .find(|kind| kind.as_str() == raw)
                .ok_or_else(|| {
                    DomainError::Malformed(
                        "invalid_kind",
                        "kind is one of all, admin, calls, refusals".to_owned(),
                    )
                }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Admin => "admin",
            Self::Calls => "calls",
            Self::Refusals => "refusals",
        }
    }

    /// The rows of this kind, as a condition on `audit_events` (each has a
    /// partial index beside `(key_id, at)`, migration 0087).
    fn condition(self) -> &'static str {
        match self {
            Self::All => "TRUE",
            Self::Admin => "action <> 'tool.call'",
            Self::Calls => "action = 'tool.call'",
            Self::Refusals => "action = 'tool.call' AND outcome = 'denied'",
        }
    }
}

/// A key's events of `kind`, newest first: by time, then by id among events
/// of the same second. The cursor is `<at>.<id>` of the last event seen.
#[tracing::instrument(skip(pool))]
pub async fn list_for_key(
    pool: &sqlx::AnyPool,
    tenant_id: &TenantId,
    key_id: &KeyId,
    kind: AuditKind,
    cursor: Option<&str>,
    limit: i64,
) -> DomainResult<Page<AuditEvent>> {
    let (at, id) = match cursor {
        Some(raw) => parse_cursor(raw)?,
        None => (i64::MAX, i64::MAX),
    };
    // A range of the (key_id, at[, id]) index, sought with a row value so
    // that a deep page costs what the first one does; the tenant is checked
    // on each row (a key id belongs to one tenant).
    let rows: Vec<AuditEvent> = sqlx::query_as(&format!(
        "SELECT id, {} FROM audit_events \
         WHERE key_id = $2 AND tenant_id = $1 AND (at, id) < ($3, $4) AND {} \
         ORDER BY at DESC, id DESC LIMIT $5",
        row::COLUMNS,
        kind.condition()
    ))
    .bind(tenant_id)
    .bind(key_id)
    .bind(at)
    .bind(id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_overfetch(rows, limit, |e| {
        format!("{}.{}", e.at.secs(), e.id)
    }))
}

fn parse_cursor(raw: &str) -> DomainResult<(i64, i64)> {
    let (at, id) = page::split_cursor(raw)?;
    Ok((at, id.parse().map_err(|_| page::invalid_cursor())?))
}
