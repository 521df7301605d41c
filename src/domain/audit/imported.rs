//! Tool calls audited by a remote gateway and delivered in batches
//! (`POST /api/v1/audit-events`): stored under the delivering key's tenant,
//! once each however often a batch is sent again.

use std::collections::HashMap;

use keysmith_verify::audit::row::{self, CallRow};

use crate::{
    db,
    domain::error::{DomainError, DomainResult},
    domain::{KeyId, ServiceUserId, TenantId, UnixTime},
};

/// One call as the gateway saw it, checked field by field at the edge.
#[derive(Debug, Clone)]
pub struct ImportedCall {
    /// The gateway's id for the event: a batch sent again is stored once.
    pub event_id: String,
    pub key_id: KeyId,
    pub service_user_id: ServiceUserId,
    /// The tool, the JSON-RPC method, or `METHOD /path`.
    pub subject: String,
    pub allowed: bool,
    pub reason: &'static str,
    pub request_id: Option<String>,
    pub at: UnixTime,
    pub status: Option<i64>,
    pub duration_us: Option<i64>,
    /// A token's call: its grant (checked to be its key's) and its client.
    pub grant_id: Option<String>,
    pub client_id: Option<String>,
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Events written now.
    pub stored: u64,
    /// Events already stored by an earlier delivery of the same batch.
    pub duplicates: u64,
}

/// Rows per `INSERT`: far below either engine's bound-parameter limit.
const ROWS_PER_STATEMENT: usize = 100;
/// Values bound per row: a call's, and the gateway's event id.
const COLUMNS: usize = row::CALL_PARAMS.len() + 1;

/// Stores `calls` for `tenant_id`, all or none. Every key must be one of the
/// tenant's, with the service user the event names: a key of another tenant
/// (or none) is `404` for the whole batch, exactly as an unknown one.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, events = calls.len()))]
pub async fn import_calls(
    pool: &sqlx::AnyPool,
    tenant_id: &TenantId,
    calls: &[ImportedCall],
) -> DomainResult<ImportReport> {
    let mut tx = db::begin_write(pool).await?;
    let owners = service_users_of_keys(&mut tx, tenant_id, calls).await?;
    for (index, call) in calls.iter().enumerate() {
        match owners.get(&call.key_id) {
            None => {
                tracing::info!(index, "audit batch names a key outside the tenant");
                return Err(DomainError::NotFound("key"));
            }
            Some(owner) if *owner != call.service_user_id => {
                return Err(DomainError::validation(format!(
                    "events[{index}].service_user_id is not the service user of its key"
                )));
            }
            Some(_) => {}
        }
    }
    check_grants(&mut tx, tenant_id, calls).await?;
    let mut stored = 0;
    for chunk in calls.chunks(ROWS_PER_STATEMENT) {
        stored += insert(&mut tx, tenant_id, chunk).await?;
    }
    for (key_id, at) in last_used(calls) {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(at)
        .bind(key_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ImportReport {
        stored,
        duplicates: calls.len() as u64 - stored,
    })
}

/// The service user of each key the calls name, among the tenant's keys only.
async fn service_users_of_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    calls: &[ImportedCall],
) -> DomainResult<HashMap<KeyId, ServiceUserId>> {
    let key_ids = calls.iter().map(|c| c.key_id.as_str()).collect();
    column_by_id(tx, tenant_id, ("api_keys", "service_user_id"), key_ids).await
}

/// `id → column` of the tenant's rows of `table` whose id is among `ids`,
/// read in chunks far below either engine's bound-parameter limit.
async fn column_by_id<K, V>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    (table, column): (&str, &str),
    mut ids: Vec<&str>,
) -> DomainResult<HashMap<K, V>>
where
    K: Eq + std::hash::Hash,
    (K, V): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    ids.sort_unstable();
    ids.dedup();
    let mut found = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let placeholders: Vec<String> = (2..chunk.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT id, {column} FROM {table} WHERE tenant_id = $1 AND id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (K, V)>(&sql).bind(tenant_id);
        for id in chunk {
            query = query.bind(*id);
        }
        found.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(found)
}

/// Every grant the calls name is one of the tenant's, backed by the call's
/// key: else `404` for the whole batch, as for a key.
async fn check_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    calls: &[ImportedCall],
) -> DomainResult<()> {
    let grant_ids = calls.iter().filter_map(|c| c.grant_id.as_deref()).collect();
    let keys: HashMap<String, KeyId> =
        column_by_id(tx, tenant_id, ("oauth_grants", "key_id"), grant_ids).await?;
    for (index, call) in calls.iter().enumerate() {
        if let Some(grant_id) = &call.grant_id
            && keys.get(grant_id) != Some(&call.key_id)
        {
            tracing::info!(index, "audit batch names a grant outside the key");
            return Err(DomainError::NotFound("grant"));
        }
    }
    Ok(())
}

/// One multi-row insert; an event id the tenant already has is skipped.
/// Returns how many rows were written.
async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    chunk: &[ImportedCall],
) -> DomainResult<u64> {
    let rows: Vec<String> = (0..chunk.len())
        .map(|n| {
            let first = n * COLUMNS;
            let values = row::call_values(|p| format!("${}", first + p));
            format!("({values}, ${})", first + COLUMNS)
        })
        .collect();
    let sql = format!(
        "INSERT INTO audit_events ({}, event_id) VALUES {} ON CONFLICT DO NOTHING",
        row::COLUMNS,
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for call in chunk {
        query = call.row(tenant_id).bind_to(query).bind(&call.event_id);
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

impl ImportedCall {
    /// The row this call is written as, under `tenant_id`.
    fn row<'a>(&'a self, tenant_id: &'a TenantId) -> CallRow<'a> {
        CallRow {
            tenant_id: tenant_id.as_str(),
            key_id: self.key_id.as_str(),
            service_user_id: self.service_user_id.as_str(),
            tool: &self.subject,
            outcome: row::outcome(self.allowed),
            reason: self.reason,
            request_id: self.request_id.as_deref(),
            at: self.at.secs(),
            status: self.status,
            duration_us: self.duration_us,
            grant_id: self.grant_id.as_deref(),
            client_id: self.client_id.as_deref(),
        }
    }
}

/// The latest allowed call per key, for `last_used_at`.
fn last_used(calls: &[ImportedCall]) -> HashMap<&KeyId, UnixTime> {
    let mut latest: HashMap<&KeyId, UnixTime> = HashMap::new();
    for call in calls.iter().filter(|c| c.allowed) {
        latest
            .entry(&call.key_id)
            .and_modify(|at| *at = (*at).max(call.at))
            .or_insert(call.at);
    }
    latest
}
