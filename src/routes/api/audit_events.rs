//! `POST /api/v1/audit-events`: tool calls audited by a remote gateway
//! (`keysmith gateway --verify-url`), delivered in batches with the gateway's
//! verify-scoped management key and stored under that key's tenant.

use axum::{Json, extract::State};
use keysmith_verify::{
    VerifyCode,
    audit::wire::{
        MAX_BATCH_EVENTS, MAX_CLIENT_ID_BYTES, MAX_DURATION_US, MAX_REQUEST_ID_BYTES,
        MAX_SUBJECT_BYTES,
    },
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{auth::VerifyCaller, extract::ApiJson};
use crate::{
    domain::{
        KeyId, ServiceUserId, TenantId, UnixTime,
        audit::imported::{self, ImportedCall},
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// How far ahead of the server's clock an event may be stamped.
const MAX_CLOCK_AHEAD: time::Duration = time::Duration::minutes(5);
/// Longest key or service user id accepted (ids are 16 characters).
const MAX_ID_BYTES: usize = 64;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditBatch {
    /// At most 500 events, each with its own `event_id`.
    pub events: Vec<AuditEventIn>,
}

/// One call the gateway audited.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEventIn {
    /// The gateway's id for this event, 16–64 of `[A-Za-z0-9_-]`: an event
    /// already stored under it is not stored again.
    pub event_id: String,
    /// Public id of a key of the caller's tenant.
    pub key_id: String,
    /// The key's service user.
    pub service_user_id: String,
    /// The tool, the JSON-RPC method, or `METHOD /path` (at most 512 bytes).
    pub subject: String,
    /// `allowed` or `denied`.
    pub outcome: String,
    /// `valid` for an allowed call, else the refusal's code.
    #[schema(value_type = String)]
    pub reason: VerifyCode,
    /// At most 128 bytes.
    pub request_id: Option<String>,
    /// When the call arrived: not before the audit retention, not more than
    /// five minutes ahead of the server's clock.
    #[schema(format = DateTime)]
    pub at: String,
    /// The HTTP status answered (100–599).
    pub status: Option<i64>,
    /// Microseconds until the answer's headers (at most a day).
    pub duration_us: Option<i64>,
    /// A call made with an OAuth access token: the grant it was issued
    /// under, which must be the key's own.
    pub grant_id: Option<String>,
    /// A call made with an OAuth access token: the client it was issued to
    /// (at most 2000 bytes).
    pub client_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditBatchResult {
    /// Events stored by this request.
    pub stored: u64,
    /// Events already stored (a batch sent again): not stored twice.
    pub duplicates: u64,
}

#[utoipa::path(post, operation_id = "audit_events_create", path = "/api/v1/audit-events", tag = "verify",
    request_body = AuditBatch,
    responses(
        (status = 200, body = AuditBatchResult, description = "every event stored, or already stored"),
        (status = 404, description = "an event names a key that is not the caller's tenant's, or a grant that is not its key's: nothing stored"),
        (status = 413, description = "the body is over 64 KiB: nothing stored"),
        (status = 422, description = "a field is out of bounds, or the batch is empty or over 500 events: nothing stored"),
    ),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: VerifyCaller,
    ApiJson(batch): ApiJson<AuditBatch>,
) -> AppResult<Json<AuditBatchResult>> {
    let oldest = state.now() - time::Duration::days(state.config.audit_retention_days);
    let newest = state.now() + MAX_CLOCK_AHEAD;
    let calls = parse_batch(batch, oldest..=newest)?;
    let tenant_id = TenantId::new(caller.0.tenant_id.as_str());
    let report = imported::import_calls(state.pool(), &tenant_id, &calls).await?;
    Ok(Json(AuditBatchResult {
        stored: report.stored,
        duplicates: report.duplicates,
    }))
}

/// Every event checked; the first bad field refuses the whole batch.
fn parse_batch(
    batch: AuditBatch,
    window: std::ops::RangeInclusive<OffsetDateTime>,
) -> AppResult<Vec<ImportedCall>> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return Err(AppError::validation(format!(
            "a batch holds 1 to {MAX_BATCH_EVENTS} events, not {}",
            batch.events.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut calls = Vec::with_capacity(batch.events.len());
    for (index, event) in batch.events.into_iter().enumerate() {
        let call = parse_event(event, &window)
            .map_err(|problem| AppError::validation(format!("events[{index}].{problem}")))?;
        if !seen.insert(call.event_id.clone()) {
            return Err(AppError::validation(format!(
                "events[{index}].event_id appears twice in the batch"
            )));
        }
        calls.push(call);
    }
    Ok(calls)
}

fn parse_event(
    event: AuditEventIn,
    window: &std::ops::RangeInclusive<OffsetDateTime>,
) -> Result<ImportedCall, String> {
    if !keysmith_verify::audit::wire::is_event_id(&event.event_id) {
        return Err("event_id must be 16 to 64 of A-Z, a-z, 0-9, `_`, `-`".into());
    }
    let id = |name: &str, value: &str| {
        if value.is_empty() || value.len() > MAX_ID_BYTES {
            Err(format!("{name} must be 1 to {MAX_ID_BYTES} bytes"))
        } else {
            Ok(())
        }
    };
    id("key_id", &event.key_id)?;
    id("service_user_id", &event.service_user_id)?;
    if let Some(grant_id) = &event.grant_id {
        id("grant_id", grant_id)?;
    }
    if event
        .client_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > MAX_CLIENT_ID_BYTES)
    {
        return Err(format!(
            "client_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"
        ));
    }
    if event.subject.is_empty() || event.subject.len() > MAX_SUBJECT_BYTES {
        return Err(format!("subject must be 1 to {MAX_SUBJECT_BYTES} bytes"));
    }
    let allowed = match event.outcome.as_str() {
        "allowed" => true,
        "denied" => false,
        _ => return Err("outcome must be `allowed` or `denied`".into()),
    };
    if allowed != (event.reason == VerifyCode::Valid) {
        return Err("reason must be `valid` exactly when the outcome is `allowed`".into());
    }
    if event
        .request_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > MAX_REQUEST_ID_BYTES)
    {
        return Err(format!(
            "request_id must be 1 to {MAX_REQUEST_ID_BYTES} bytes"
        ));
    }
    let at = OffsetDateTime::parse(&event.at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "at must be an RFC 3339 time".to_owned())?;
    if !window.contains(&at) {
        return Err("at is before the audit retention or ahead of the server's clock".into());
    }
    if event.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err("status must be an HTTP status, 100 to 599".into());
    }
    if event
        .duration_us
        .is_some_and(|us| !(0..=MAX_DURATION_US).contains(&us))
    {
        return Err(format!("duration_us must be 0 to {MAX_DURATION_US}"));
    }
    Ok(ImportedCall {
        event_id: event.event_id,
        key_id: KeyId::new(event.key_id),
        service_user_id: ServiceUserId::new(event.service_user_id),
        subject: event.subject,
        allowed,
        reason: event.reason.as_str(),
        request_id: event.request_id,
        at: UnixTime::from(at),
        status: event.status,
        duration_us: event.duration_us,
        grant_id: event.grant_id,
        client_id: event.client_id,
    })
}
