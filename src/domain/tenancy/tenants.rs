//! Tenants: the unit of isolation. Everything else belongs to exactly one.

use crate::domain::{TenantId, UnixTime};
use serde::Serialize;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::crypto::random;
use crate::{
    db::{OnUniqueViolation, begin_write},
    domain::error::{DomainError, DomainResult},
    domain::{Actor, AdminId, Name, TenantSlug, audit, events::webhooks::WebhookTenant},
};
use keysmith_verify::{
    KeyLimits, KeyPrefix,
    limit::{Quota, RateLimit},
};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub key_prefix: String,
    pub default_expiry_days: i64,
    pub max_expiry_days: i64,
    pub rotation_overlap_days: i64,
    pub disabled_at: Option<UnixTime>,
    pub created_at: UnixTime,
    /// Limits given to new keys that set none of their own (stored JSON).
    pub default_limits: Option<String>,
    /// OAuth: how long an access token lives (5 minutes to 24 hours).
    pub oauth_access_token_minutes: i64,
    /// OAuth: a refresh token unused this long expires.
    pub oauth_refresh_idle_days: i64,
    /// OAuth: no refresh token of a grant lives past its approval plus this.
    pub oauth_refresh_absolute_days: i64,
    /// OAuth: 1 if clients may register themselves (RFC 7591), 0 if only
    /// pre-registered and metadata-document clients are accepted.
    pub oauth_registration_open: i64,
    /// OAuth: 1 if clients identified by a client ID metadata document are
    /// accepted, 0 if only stored clients are.
    pub oauth_metadata_documents: i64,
}

const COLUMNS: &str = "id, slug, name, key_prefix, default_expiry_days, max_expiry_days, rotation_overlap_days, disabled_at, created_at, default_limits, \
    oauth_access_token_minutes, oauth_refresh_idle_days, oauth_refresh_absolute_days, oauth_registration_open, \
    oauth_metadata_documents";

impl Tenant {
    /// The rate limit and quota a new key gets where it sets none.
    pub fn default_limits(&self) -> KeyLimits {
        KeyLimits::from_storage(self.default_limits.as_deref())
    }

    /// Whether clients may register themselves at `{issuer}/register`.
    pub fn registration_open(&self) -> bool {
        self.oauth_registration_open != 0
    }

    /// Whether clients identified by a client ID metadata document may ask.
    pub fn accepts_metadata_documents(&self) -> bool {
        self.oauth_metadata_documents != 0
    }

    /// The tenant as its webhook endpoints name it.
    pub fn for_webhooks(&self) -> WebhookTenant<'_> {
        WebhookTenant {
            id: &self.id,
            slug: &self.slug,
        }
    }
}

#[derive(Debug)]
pub struct NewTenant {
    pub slug: TenantSlug,
    pub name: Name,
    pub key_prefix: KeyPrefix,
}

#[tracing::instrument(skip_all, fields(slug = %new.slug))]
pub async fn create(pool: &AnyPool, new: NewTenant, now: OffsetDateTime) -> DomainResult<Tenant> {
    let id = TenantId::new(random::base62(16));
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(new.slug.as_str())
    .bind(new.name.as_str())
    .bind(new.key_prefix.as_str())
    .bind(UnixTime::from(now))
    .execute(pool)
    .await
    .on_unique_violation(|| {
        DomainError::Conflict(format!("a tenant with slug `{}` already exists", new.slug))
    })?;
    find_by_id(pool, &id)
        .await?
        .ok_or(DomainError::NotFound("tenant"))
}

pub async fn find_by_slug(pool: &AnyPool, slug: &str) -> DomainResult<Option<Tenant>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn find_by_id(pool: &AnyPool, id: &TenantId) -> DomainResult<Option<Tenant>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// A tenant and the role someone has in it.
#[derive(Debug, sqlx::FromRow)]
pub struct TenantRole {
    #[sqlx(flatten)]
    pub tenant: Tenant,
    pub role: String,
}

/// The tenants `user_id` has a role in, with the role: one query that reads
/// only those tenants.
pub async fn with_roles_of(pool: &AnyPool, user_id: &AdminId) -> DomainResult<Vec<TenantRole>> {
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
    Ok(sqlx::query_as(&format!(
        "SELECT {}, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
         WHERE m.user_id = $1 ORDER BY t.slug",
        columns.join(", ")
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

pub async fn list(pool: &AnyPool) -> DomainResult<Vec<Tenant>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants ORDER BY slug"))
            .fetch_all(pool)
            .await?,
    )
}

/// Longest key lifetime a tenant may allow (ten years).
pub const MAX_EXPIRY_DAYS: i64 = 3650;
/// How long a rotated key may keep working, in days.
pub const OVERLAP_DAYS: std::ops::RangeInclusive<i64> = 1..=30;
/// OAuth access-token lifetime, minutes: clients' refresh is unreliable in
/// the field, so up to a day; at least five minutes.
pub const ACCESS_TOKEN_MINUTES: std::ops::RangeInclusive<i64> = 5..=1440;
/// OAuth refresh-token lifetimes (idle and absolute), days.
pub const REFRESH_DAYS: std::ops::RangeInclusive<i64> = 1..=365;

/// A change to a tenant's key policy; `None` leaves a setting as it is.
#[derive(Debug, Default)]
pub struct PolicyChange {
    pub default_expiry_days: Option<i64>,
    pub max_expiry_days: Option<i64>,
    pub rotation_overlap_days: Option<i64>,
    /// Prefix of keys created from now on; existing keys keep theirs.
    pub key_prefix: Option<KeyPrefix>,
    /// The rate limit new keys get when they set none; `Some(None)` lifts it.
    pub default_rate_limit: Option<Option<RateLimit>>,
    /// The quota new keys get when they set none; `Some(None)` lifts it.
    pub default_quota: Option<Option<Quota>>,
    /// OAuth access-token lifetime in minutes ([`ACCESS_TOKEN_MINUTES`]).
    pub oauth_access_token_minutes: Option<i64>,
    /// OAuth refresh-token idle lifetime in days ([`REFRESH_DAYS`]).
    pub oauth_refresh_idle_days: Option<i64>,
    /// OAuth refresh absolute lifetime in days ([`REFRESH_DAYS`], ≥ idle).
    pub oauth_refresh_absolute_days: Option<i64>,
    /// Whether clients may register themselves (RFC 7591 dynamic registration).
    pub oauth_registration_open: Option<bool>,
    /// Whether clients identified by a client ID metadata document are accepted.
    pub oauth_metadata_documents: Option<bool>,
}

impl PolicyChange {
    pub fn is_empty(&self) -> bool {
        self.default_expiry_days.is_none()
            && self.max_expiry_days.is_none()
            && self.rotation_overlap_days.is_none()
            && self.key_prefix.is_none()
            && self.default_rate_limit.is_none()
            && self.default_quota.is_none()
            && self.oauth_access_token_minutes.is_none()
            && self.oauth_refresh_idle_days.is_none()
            && self.oauth_refresh_absolute_days.is_none()
            && self.oauth_registration_open.is_none()
            && self.oauth_metadata_documents.is_none()
    }
}

/// Changes the policy of `tenant_id` after checking the result as a whole
/// (1 ≤ default ≤ maximum ≤ ten years, overlap 1–30 days), audited as
/// `tenant.policy` with before and after; default limits are checked as a
/// key's are. Keys already issued keep their
/// expiry; the new bounds apply to keys created or rotated from now on.
#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn update_policy(
    pool: &AnyPool,
    tenant_id: &TenantId,
    change: PolicyChange,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<Tenant> {
    if change.is_empty() {
        return Err(DomainError::validation(
            "give at least one of default_expiry_days, max_expiry_days, rotation_overlap_days, key_prefix, default_rate_limit, default_quota, \
             oauth_access_token_minutes, oauth_refresh_idle_days, oauth_refresh_absolute_days, oauth_registration_open, oauth_metadata_documents",
        ));
    }
    let mut tx = begin_write(pool).await?;
    // Locked: two concurrent changes must not each check the policy they read
    // and together write one neither checked.
    let lock = crate::db::row_lock(pool);
    let before: Tenant = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1{lock}"
    ))
    .bind(tenant_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound("tenant"))?;
    let max = change.max_expiry_days.unwrap_or(before.max_expiry_days);
    let default = change
        .default_expiry_days
        .unwrap_or(before.default_expiry_days);
    let overlap = change
        .rotation_overlap_days
        .unwrap_or(before.rotation_overlap_days);
    if !(1..=MAX_EXPIRY_DAYS).contains(&max) {
        return Err(DomainError::validation(format!(
            "max_expiry_days must be between 1 and {MAX_EXPIRY_DAYS}"
        )));
    }
    if !(1..=max).contains(&default) {
        return Err(DomainError::validation(format!(
            "default_expiry_days must be between 1 and max_expiry_days ({max})"
        )));
    }
    if !OVERLAP_DAYS.contains(&overlap) {
        return Err(DomainError::validation(
            "rotation_overlap_days must be between 1 and 30",
        ));
    }
    let oauth = oauth_lifetimes(&change, &before)?;
    let prefix = change
        .key_prefix
        .as_ref()
        .map_or(before.key_prefix.as_str(), KeyPrefix::as_str);
    let limits = before.default_limits();
    let limits = KeyLimits::new(
        change.default_rate_limit.unwrap_or(limits.rate_limit),
        change.default_quota.unwrap_or(limits.quota),
    )
    .map_err(|e| DomainError::validation(format!("default limits: {e}")))?;
    sqlx::query(
        "UPDATE tenants SET default_expiry_days = $1, max_expiry_days = $2, rotation_overlap_days = $3, key_prefix = $4, \
         default_limits = $5, oauth_access_token_minutes = $6, oauth_refresh_idle_days = $7, \
         oauth_refresh_absolute_days = $8, oauth_registration_open = $9, oauth_metadata_documents = $10 \
         WHERE id = $11",
    )
    .bind(default)
    .bind(max)
    .bind(overlap)
    .bind(prefix)
    .bind(limits.to_storage())
    .bind(oauth[0])
    .bind(oauth[1])
    .bind(oauth[2])
    .bind(
        change
            .oauth_registration_open
            .map_or(before.oauth_registration_open, i64::from),
    )
    .bind(
        change
            .oauth_metadata_documents
            .map_or(before.oauth_metadata_documents, i64::from),
    )
    .bind(tenant_id)
    .execute(&mut *tx)
    .await?;
    let after: Tenant = sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await?;
    let reason =
        serde_json::json!({"before": policy(&before), "after": policy(&after)}).to_string();
    audit::record(
        &mut *tx,
        audit::NewAuditEvent::tenant_action(tenant_id, actor, "tenant.policy", Some(&reason), now),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A tenant's key policy, as the API shows it and the audit log records it.
pub fn policy(tenant: &Tenant) -> serde_json::Value {
    let limits = tenant.default_limits();
    serde_json::json!({
        "key_prefix": tenant.key_prefix,
        "default_expiry_days": tenant.default_expiry_days,
        "max_expiry_days": tenant.max_expiry_days,
        "rotation_overlap_days": tenant.rotation_overlap_days,
        "default_rate_limit": limits.rate_limit,
        "default_quota": limits.quota,
        "oauth_access_token_minutes": tenant.oauth_access_token_minutes,
        "oauth_refresh_idle_days": tenant.oauth_refresh_idle_days,
        "oauth_refresh_absolute_days": tenant.oauth_refresh_absolute_days,
        "oauth_registration_open": tenant.registration_open(),
        "oauth_metadata_documents": tenant.accepts_metadata_documents(),
    })
}

/// The OAuth lifetimes after `change`, checked as a whole: access minutes,
/// refresh idle days, refresh absolute days (idle ≤ absolute).
fn oauth_lifetimes(change: &PolicyChange, before: &Tenant) -> DomainResult<[i64; 3]> {
    let access = change
        .oauth_access_token_minutes
        .unwrap_or(before.oauth_access_token_minutes);
    let idle = change
        .oauth_refresh_idle_days
        .unwrap_or(before.oauth_refresh_idle_days);
    let absolute = change
        .oauth_refresh_absolute_days
        .unwrap_or(before.oauth_refresh_absolute_days);
    if !ACCESS_TOKEN_MINUTES.contains(&access) {
        return Err(DomainError::validation(format!(
            "oauth_access_token_minutes must be between {} and {} (5 minutes to 24 hours)",
            ACCESS_TOKEN_MINUTES.start(),
            ACCESS_TOKEN_MINUTES.end()
        )));
    }
    if !REFRESH_DAYS.contains(&absolute) {
        return Err(DomainError::validation(format!(
            "oauth_refresh_absolute_days must be between {} and {}",
            REFRESH_DAYS.start(),
            REFRESH_DAYS.end()
        )));
    }
    if !(1..=absolute).contains(&idle) {
        return Err(DomainError::validation(format!(
            "oauth_refresh_idle_days must be between 1 and oauth_refresh_absolute_days ({absolute})"
        )));
    }
    Ok([access, idle, absolute])
}
