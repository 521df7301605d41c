//! The key lifecycle: create (shown once), rotate with an overlap, revoke, sweep.
//!
//! Every change runs in one transaction together with its audit event, and
//! state transitions are conditional updates (`WHERE status = 'active'`), so
//! two admins rotating the same key at once get one rotation and one `409`.

use sqlx::{Any, AnyPool, Transaction};
use time::{Duration, OffsetDateTime};

use crate::{
    domain::{Actor, Name, Scope, audit, page::Page, tenants::Tenant},
    error::{AppError, AppResult},
};
use keysmith_verify::{ApiKey, KeyPrefix, Peppers, ToolAllowlist, timestamp};

/// A key as stored, minus its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub tenant_id: String,
    pub service_user_id: String,
    pub name: String,
    pub prefix: String,
    pub hint: String,
    pub status: String,
    pub allowed_tools: Option<String>,
    pub scopes: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: i64,
    pub cutoff_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, service_user_id, name, prefix, hint, status, allowed_tools, scopes, \
    created_at, created_by, expires_at, cutoff_at, revoked_at, revoked_reason, rotated_from, rotated_to, last_used_at";

/// Lifecycle state: one definition, shared with the verifier.
pub use keysmith_verify::KeyState;

impl KeyRow {
    pub fn status_at(&self, now: OffsetDateTime) -> KeyState {
        KeyState::at(
            &self.status,
            self.expires_at,
            self.cutoff_at,
            timestamp::to_unix(now),
        )
    }

    pub fn allowed_tools(&self) -> ToolAllowlist {
        ToolAllowlist::from_storage(self.allowed_tools.as_deref())
    }

    pub fn scopes(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }
}

/// How the caller chose the expiry.
#[derive(Debug, Clone, Copy)]
pub enum ExpiryRequest {
    /// The tenant's default lifetime.
    TenantDefault,
    At(OffsetDateTime),
    InDays(i64),
}

impl ExpiryRequest {
    /// The request from the two ways a client can say it: a moment or a
    /// number of days, at most one of them (`None`: the tenant's default).
    pub fn from_parts(at: Option<OffsetDateTime>, in_days: Option<i64>) -> AppResult<Option<Self>> {
        match (at, in_days) {
            (Some(_), Some(_)) => Err(AppError::validation(
                "give expires_at or expires_in_days, not both",
            )),
            (Some(at), None) => Ok(Some(Self::At(at))),
            (None, Some(days)) => Ok(Some(Self::InDays(days))),
            (None, None) => Ok(None),
        }
    }
}

/// A key's tool allowlist as a client gave it: absent means every tool.
pub fn allowlist<S: AsRef<str>>(raw: Option<&[S]>) -> AppResult<ToolAllowlist> {
    raw.map_or(Ok(ToolAllowlist::any_tool()), |list| {
        ToolAllowlist::from_list(list)
            .map_err(|e| AppError::validation(format!("allowed_tools: {e}")))
    })
}

/// Resolves and checks an expiry against the tenant policy.
pub fn resolve_expiry(
    tenant: &Tenant,
    request: ExpiryRequest,
    now: OffsetDateTime,
) -> AppResult<OffsetDateTime> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let latest = now + Duration::days(tenant.max_expiry_days);
    let at = match request {
        ExpiryRequest::TenantDefault => {
            now + Duration::days(tenant.default_expiry_days.min(tenant.max_expiry_days))
        }
        ExpiryRequest::InDays(days) if (1..=tenant.max_expiry_days).contains(&days) => {
            now + Duration::days(days)
        }
        ExpiryRequest::InDays(_) => {
            return Err(AppError::validation(format!(
                "expires_in_days must be between 1 and {} (the tenant maximum)",
                tenant.max_expiry_days
            )));
        }
        ExpiryRequest::At(at) => at.replace_nanosecond(0).unwrap_or(at),
    };
    if at <= now {
        return Err(AppError::validation("expires_at must be in the future"));
    }
    if at > latest {
        return Err(AppError::validation(format!(
            "expires_at is beyond the tenant maximum of {} days",
            tenant.max_expiry_days
        )));
    }
    Ok(at)
}

#[derive(Debug)]
pub struct NewKey {
    pub service_user_id: String,
    pub name: Name,
    pub expiry: ExpiryRequest,
    pub allowed_tools: ToolAllowlist,
    pub scopes: Vec<Scope>,
}

/// A freshly minted key: the stored row and the plaintext, which exists only here.
#[derive(Debug)]
pub struct IssuedKey {
    pub row: KeyRow,
    pub key: ApiKey,
}

struct KeyInsert<'a> {
    tenant: &'a Tenant,
    service_user_id: &'a str,
    name: &'a str,
    allowed_tools: Option<String>,
    scopes: String,
    expires_at: OffsetDateTime,
    rotated_from: Option<&'a str>,
    actor: &'a Actor,
    now: OffsetDateTime,
}

async fn insert_key(
    tx: &mut Transaction<'_, Any>,
    peppers: &Peppers,
    input: KeyInsert<'_>,
) -> AppResult<IssuedKey> {
    let prefix = KeyPrefix::parse(&input.tenant.key_prefix).unwrap_or_default();
    let key = ApiKey::generate(&prefix);
    let digest = hex::encode(peppers.digest_current(key.secret()));
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, service_user_id, name, prefix, secret_hash, pepper_version, hint, status, \
         allowed_tools, scopes, created_at, created_by, expires_at, rotated_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $12, $13, $14)",
    )
    .bind(key.key_id())
    .bind(&input.tenant.id)
    .bind(input.service_user_id)
    .bind(input.name)
    .bind(prefix.as_str())
    .bind(digest)
    .bind(peppers.current_version())
    .bind(key.hint())
    .bind(input.allowed_tools)
    .bind(input.scopes)
    .bind(timestamp::to_unix(input.now))
    .bind(input.actor.to_string())
    .bind(timestamp::to_unix(input.expires_at))
    .bind(input.rotated_from)
    .execute(&mut **tx)
    .await?;
    audit::record(
        &mut **tx,
        audit::NewAuditEvent {
            tenant_id: &input.tenant.id,
            key_id: Some(key.key_id()),
            service_user_id: Some(input.service_user_id),
            actor: input.actor.to_string(),
            action: "key.create",
            tool: None,
            outcome: "ok",
            reason: input.rotated_from.map(|_| "rotation"),
            request_id: None,
            at: input.now,
        },
    )
    .await?;
    let row = fetch(&mut **tx, &input.tenant.id, key.key_id()).await?;
    Ok(IssuedKey { row, key })
}

async fn fetch<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    tenant_id: &str,
    key_id: &str,
) -> AppResult<KeyRow> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(executor)
    .await?
    .ok_or(AppError::NotFound("key"))
}

/// Creates a key for a service user of `tenant`.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, service_user_id = %new.service_user_id))]
pub async fn create(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    new: NewKey,
    actor: &Actor,
    now: OffsetDateTime,
) -> AppResult<IssuedKey> {
    let expires_at = resolve_expiry(tenant, new.expiry, now)?;
    let mut tx = crate::db::begin_write(pool).await?;
    let owner: Option<(String,)> =
        sqlx::query_as("SELECT id FROM service_users WHERE tenant_id = $1 AND id = $2")
            .bind(&tenant.id)
            .bind(&new.service_user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if owner.is_none() {
        return Err(AppError::NotFound("service user"));
    }
    let scopes: Vec<&str> = new.scopes.iter().map(Scope::as_str).collect();
    let issued = insert_key(
        &mut tx,
        peppers,
        KeyInsert {
            tenant,
            service_user_id: &new.service_user_id,
            name: new.name.as_str(),
            allowed_tools: new.allowed_tools.to_storage(),
            scopes: serde_json::to_string(&scopes).map_err(anyhow::Error::from)?,
            expires_at,
            rotated_from: None,
            actor,
            now,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(key_id = %issued.row.id, "key created");
    Ok(issued)
}

/// The outcome of a rotation: the new key (shown once) and the superseded one.
#[derive(Debug)]
pub struct Rotation {
    pub new: IssuedKey,
    pub old: KeyRow,
}

/// Rotates an active key: a new key for the same service user, name, tools and
/// scopes; the old key keeps working until `min(old expiry, now + overlap)`.
/// `expiry` chooses the new key's lifetime; by default it gets the old key's
/// lifetime again, within the tenant maximum.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, key_id = %key_id))]
pub async fn rotate(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    key_id: &str,
    expiry: Option<ExpiryRequest>,
    actor: &Actor,
    now: OffsetDateTime,
) -> AppResult<Rotation> {
    let mut tx = crate::db::begin_write(pool).await?;
    let old = fetch(&mut *tx, &tenant.id, key_id).await?;
    let status = old.status_at(now);
    if status != KeyState::Active {
        return Err(AppError::Conflict(format!(
            "only an active key can be rotated; this key is {}",
            status.as_str()
        )));
    }
    let lifetime_days =
        ((old.expires_at - old.created_at) / 86_400).clamp(1, tenant.max_expiry_days);
    let expires_at = resolve_expiry(
        tenant,
        expiry.unwrap_or(ExpiryRequest::InDays(lifetime_days)),
        now,
    )?;
    let new = insert_key(
        &mut tx,
        peppers,
        KeyInsert {
            tenant,
            service_user_id: &old.service_user_id,
            name: &old.name,
            allowed_tools: old.allowed_tools.clone(),
            scopes: old.scopes.clone(),
            expires_at,
            rotated_from: Some(&old.id),
            actor,
            now,
        },
    )
    .await?;
    let overlap_end = timestamp::to_unix(now + Duration::days(tenant.rotation_overlap_days));
    let cutoff = old.expires_at.min(overlap_end);
    let updated = sqlx::query(
        "UPDATE api_keys SET status = 'rotating', cutoff_at = $1, rotated_to = $2 \
         WHERE tenant_id = $3 AND id = $4 AND status = 'active'",
    )
    .bind(cutoff)
    .bind(&new.row.id)
    .bind(&tenant.id)
    .bind(&old.id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Someone else rotated or revoked it between our read and write.
        return Err(AppError::Conflict(
            "the key changed while rotating; reload and try again".into(),
        ));
    }
    audit::record(
        &mut *tx,
        audit::NewAuditEvent {
            tenant_id: &tenant.id,
            key_id: Some(&old.id),
            service_user_id: Some(&old.service_user_id),
            actor: actor.to_string(),
            action: "key.rotate",
            tool: None,
            outcome: "ok",
            reason: Some(&format!("superseded by {}", new.row.id)),
            request_id: None,
            at: now,
        },
    )
    .await?;
    let old = fetch(&mut *tx, &tenant.id, &old.id).await?;
    super::outbox::enqueue_rotation(&mut tx, tenant, &old, &new.row, actor, now).await?;
    crate::db::announce_key_change(&mut tx, pool, &old.id).await?;
    tx.commit().await?;
    tracing::info!(old_key_id = %old.id, new_key_id = %new.row.id, "key rotated");
    Ok(Rotation { new, old })
}

/// Revokes an active or rotating key at once.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, key_id = %key_id))]
pub async fn revoke(
    pool: &AnyPool,
    tenant: &Tenant,
    key_id: &str,
    reason: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> AppResult<KeyRow> {
    let mut tx = crate::db::begin_write(pool).await?;
    let current = fetch(&mut *tx, &tenant.id, key_id).await?;
    let status = current.status_at(now);
    if !matches!(status, KeyState::Active | KeyState::Rotating) {
        return Err(AppError::Conflict(format!(
            "the key is already {}",
            status.as_str()
        )));
    }
    let updated = sqlx::query(
        "UPDATE api_keys SET status = 'revoked', revoked_at = $1, revoked_reason = $2 \
         WHERE tenant_id = $3 AND id = $4 AND status IN ('active', 'rotating')",
    )
    .bind(timestamp::to_unix(now))
    .bind(reason)
    .bind(&tenant.id)
    .bind(key_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "the key changed while revoking; reload and try again".into(),
        ));
    }
    audit::record(
        &mut *tx,
        audit::NewAuditEvent {
            tenant_id: &tenant.id,
            key_id: Some(key_id),
            service_user_id: Some(&current.service_user_id),
            actor: actor.to_string(),
            action: "key.revoke",
            tool: None,
            outcome: "ok",
            reason: Some(reason),
            request_id: None,
            at: now,
        },
    )
    .await?;
    let row = fetch(&mut *tx, &tenant.id, key_id).await?;
    crate::db::announce_key_change(&mut tx, pool, key_id).await?;
    tx.commit().await?;
    tracing::info!("key revoked");
    Ok(row)
}

/// One key of `tenant_id`; another tenant's is `NotFound`.
pub async fn get(pool: &AnyPool, tenant_id: &str, key_id: &str) -> AppResult<KeyRow> {
    fetch(pool, tenant_id, key_id).await
}

/// The state of one key of a tenant at `now`, or `None` if there is no such key.
pub async fn state_of(
    pool: &AnyPool,
    tenant_id: &str,
    key_id: &str,
    now: OffsetDateTime,
) -> AppResult<Option<KeyState>> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT status, expires_at, cutoff_at FROM api_keys WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(status, expires_at, cutoff_at)| {
        KeyState::at(&status, expires_at, cutoff_at, timestamp::to_unix(now))
    }))
}

#[derive(Debug, Default, Clone)]
pub struct KeyFilter {
    pub status: Option<KeyState>,
    pub service_user_id: Option<String>,
}

/// Keys of a tenant, newest first, by keyset pagination on `(created_at, id)`
/// so page 1000 costs the same as page 1.
#[tracing::instrument(skip(pool))]
pub async fn list(
    pool: &AnyPool,
    tenant_id: &str,
    filter: &KeyFilter,
    cursor: Option<&str>,
    limit: i64,
    now: OffsetDateTime,
) -> AppResult<Page<KeyRow>> {
    let now_unix = timestamp::to_unix(now);
    let mut sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1");
    let mut next = 2;
    let mut placeholder = || {
        let p = format!("${next}");
        next += 1;
        p
    };
    let status_sql = filter
        .status
        .map(|state| format!(" AND {}", state.sql_condition(&placeholder())));
    sql.push_str(status_sql.as_deref().unwrap_or_default());
    if filter.service_user_id.is_some() {
        sql.push_str(&format!(" AND service_user_id = {}", placeholder()));
    }
    let cursor = cursor.map(parse_cursor).transpose()?;
    if cursor.is_some() {
        // A row-value comparison, not `a < x OR (a = x AND b < y)`: both
        // engines seek the index to it, so page 1,000 costs what page 1 does.
        let (a, b) = (placeholder(), placeholder());
        sql.push_str(&format!(" AND (created_at, id) < ({a}, {b})"));
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        placeholder()
    ));

    let mut query = sqlx::query_as::<_, KeyRow>(&sql).bind(tenant_id);
    if filter.status.is_some() {
        query = query.bind(now_unix);
    }
    if let Some(su) = &filter.service_user_id {
        query = query.bind(su.as_str());
    }
    if let Some((created_at, id)) = cursor {
        query = query.bind(created_at).bind(id);
    }
    let rows = query.bind(limit + 1).fetch_all(pool).await?;
    Ok(Page::from_overfetch(rows, limit, |k| {
        format!("{}.{}", k.created_at, k.id)
    }))
}

fn parse_cursor(raw: &str) -> AppResult<(i64, String)> {
    let invalid = || {
        AppError::BadRequest(
            "invalid_cursor",
            "cursor is not one this API returned".into(),
        )
    };
    let (at, id) = raw.split_once('.').ok_or_else(invalid)?;
    let at = at.parse().map_err(|_| invalid())?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    Ok((at, id.to_owned()))
}

/// What one sweep changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub revoked_after_rotation: u64,
    pub expired: u64,
}

/// Revokes rotated keys past their cutoff (reason `rotated`) and marks expired
/// keys. Row by row, each with its audit event in its own transaction and a
/// conditional update, so a re-run or a second instance does nothing twice.
#[tracing::instrument(skip_all)]
pub async fn sweep(pool: &AnyPool, now: OffsetDateTime) -> AppResult<SweepReport> {
    let now_unix = timestamp::to_unix(now);
    let mut report = SweepReport::default();
    let due: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, tenant_id, service_user_id, cutoff_at FROM api_keys WHERE status = 'rotating' AND cutoff_at <= $1",
    )
    .bind(now_unix)
    .fetch_all(pool)
    .await?;
    for (id, tenant_id, service_user_id, cutoff_at) in due {
        if transition(
            pool,
            &id,
            &tenant_id,
            &service_user_id,
            Transition::RevokeRotated { cutoff_at },
            now,
        )
        .await?
        {
            report.revoked_after_rotation += 1;
        }
    }
    let expired: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, tenant_id, service_user_id, expires_at FROM api_keys WHERE status = 'active' AND expires_at <= $1",
    )
    .bind(now_unix)
    .fetch_all(pool)
    .await?;
    for (id, tenant_id, service_user_id, _) in expired {
        if transition(
            pool,
            &id,
            &tenant_id,
            &service_user_id,
            Transition::Expire,
            now,
        )
        .await?
        {
            report.expired += 1;
        }
    }
    if report != SweepReport::default() {
        tracing::info!(?report, "lifecycle sweep");
    }
    Ok(report)
}

enum Transition {
    RevokeRotated { cutoff_at: i64 },
    Expire,
}

async fn transition(
    pool: &AnyPool,
    id: &str,
    tenant_id: &str,
    service_user_id: &str,
    transition: Transition,
    now: OffsetDateTime,
) -> AppResult<bool> {
    let mut tx = crate::db::begin_write(pool).await?;
    let (updated, action, reason) = match transition {
        Transition::RevokeRotated { cutoff_at } => (
            sqlx::query(
                "UPDATE api_keys SET status = 'revoked', revoked_at = $1, revoked_reason = 'rotated' WHERE id = $2 AND status = 'rotating'",
            )
            .bind(cutoff_at)
            .bind(id)
            .execute(&mut *tx)
            .await?,
            "key.revoke",
            Some("rotated"),
        ),
        Transition::Expire => (
            sqlx::query("UPDATE api_keys SET status = 'expired' WHERE id = $1 AND status = 'active'")
                .bind(id)
                .execute(&mut *tx)
                .await?,
            "key.expire",
            None,
        ),
    };
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    audit::record(
        &mut *tx,
        audit::NewAuditEvent {
            tenant_id,
            key_id: Some(id),
            service_user_id: Some(service_user_id),
            actor: Actor::System.to_string(),
            action,
            tool: None,
            outcome: "ok",
            reason,
            request_id: None,
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
