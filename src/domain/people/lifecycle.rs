//! An admin account's lifecycle: whether its sessions still hold, disabling
//! and enabling it, ending its sessions. Every change is one transaction
//! with its `account_events` row.

use crate::domain::{AdminId, TenantId, UnixTime};
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{
        Actor, audit,
        people::accounts::{self, Password},
        values::page::{self, Page},
    },
};

/// What every admin request re-reads about its account: one primary-key row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountState {
    pub is_superadmin: i64,
    pub disabled_at: Option<UnixTime>,
    pub session_epoch: i64,
    /// After a reset: nothing but choosing a new password until it is done.
    pub must_change_password: i64,
    pub totp_enabled_at: Option<UnixTime>,
    /// How many of the account's tenants require a second factor.
    pub totp_required_by_tenants: i64,
}

impl AccountState {
    /// Whether a session opened in `epoch` may go on.
    pub fn admits(&self, epoch: i64) -> bool {
        self.disabled_at.is_none() && self.session_epoch == epoch
    }
}

pub async fn state(pool: &AnyPool, user_id: &AdminId) -> DomainResult<Option<AccountState>> {
    Ok(sqlx::query_as(
        "SELECT is_superadmin, disabled_at, session_epoch, must_change_password, totp_enabled_at, \
         (SELECT COUNT(*) FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
          WHERE m.user_id = admin_users.id AND t.require_totp = 1) AS totp_required_by_tenants \
         FROM admin_users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Records what happened to an account, inside the caller's transaction.
pub async fn record_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &AdminId,
    actor: &Actor,
    action: &str,
    detail: Option<&str>,
    now: OffsetDateTime,
) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO account_events (user_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(actor.to_string())
    .bind(action)
    .bind(detail)
    .bind(UnixTime::from(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends every session of the account at once (their next request is refused).
pub async fn bump_epoch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &AdminId,
) -> DomainResult<()> {
    sqlx::query("UPDATE admin_users SET session_epoch = session_epoch + 1 WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Disables (`true`) or enables the account with `email`; disabling ends
/// its sessions. Returns the account id.
#[tracing::instrument(skip_all, fields(disabled))]
pub async fn set_disabled(
    pool: &AnyPool,
    email: &str,
    disabled: bool,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<AdminId> {
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(AdminId,)> = sqlx::query_as(
        "UPDATE admin_users SET disabled_at = $1, session_epoch = session_epoch + 1 \
         WHERE email = $2 RETURNING id",
    )
    .bind(disabled.then(|| UnixTime::from(now)))
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id,) = found.ok_or(DomainError::NotFound("account"))?;
    let action = if disabled {
        "account.disable"
    } else {
        "account.enable"
    };
    record_event(&mut tx, &user_id, actor, action, None, now).await?;
    tx.commit().await?;
    Ok(user_id)
}

/// "Sign out everywhere": ends every session of the account.
#[tracing::instrument(skip_all)]
pub async fn end_sessions(
    pool: &AnyPool,
    user_id: &AdminId,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    bump_epoch(&mut tx, user_id).await?;
    record_event(
        &mut tx,
        user_id,
        actor,
        "account.sign_out_everywhere",
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One account as the superadmin's accounts page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountLine {
    pub id: AdminId,
    pub email: String,
    pub is_superadmin: i64,
    pub disabled_at: Option<UnixTime>,
    pub must_change_password: i64,
    pub totp_enabled_at: Option<UnixTime>,
}

pub async fn list(pool: &AnyPool) -> DomainResult<Vec<AccountLine>> {
    Ok(sqlx::query_as(
        "SELECT id, email, is_superadmin, disabled_at, must_change_password, totp_enabled_at \
         FROM admin_users ORDER BY email",
    )
    .fetch_all(pool)
    .await?)
}

/// Gives the account a temporary password it must replace at its next
/// sign-in, and ends its sessions.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    pool: &AnyPool,
    email: &str,
    temporary: Password,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let hash = accounts::hash_password(temporary).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(AdminId,)> = sqlx::query_as(
        "UPDATE admin_users SET password_hash = $1, must_change_password = 1, \
         session_epoch = session_epoch + 1 WHERE email = $2 RETURNING id",
    )
    .bind(&hash)
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id,) = found.ok_or(DomainError::NotFound("account"))?;
    record_event(
        &mut tx,
        &user_id,
        actor,
        "account.password_reset",
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the account's own new password (the current one was checked by the
/// caller), clears a pending reset and ends its other sessions. Returns the
/// new session epoch, for the session that made the change to keep going.
#[tracing::instrument(skip_all)]
pub async fn set_own_password(
    pool: &AnyPool,
    user_id: &AdminId,
    new: Password,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<i64> {
    let hash = accounts::hash_password(new).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let (epoch,): (i64,) = sqlx::query_as(
        "UPDATE admin_users SET password_hash = $1, must_change_password = 0, \
         session_epoch = session_epoch + 1 WHERE id = $2 RETURNING session_epoch",
    )
    .bind(&hash)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    record_event(
        &mut tx,
        user_id,
        actor,
        "account.password_change",
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(epoch)
}

/// The stored hash of an account's password, to check its current one.
pub async fn password_hash(pool: &AnyPool, user_id: &AdminId) -> DomainResult<String> {
    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM admin_users WHERE id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await?;
    Ok(hash)
}

/// Takes the account's role in a tenant away, ending its sessions (a
/// superadmin's stay: see `end_sessions_on_demotion`).
#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn remove_role(
    pool: &AnyPool,
    tenant_id: &TenantId,
    email: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(AdminId,)> = sqlx::query_as(
        "DELETE FROM memberships WHERE tenant_id = $1 \
         AND user_id = (SELECT id FROM admin_users WHERE email = $2) RETURNING user_id",
    )
    .bind(tenant_id)
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id,) = found.ok_or(DomainError::NotFound("role"))?;
    accounts::end_sessions_on_demotion(&mut tx, &user_id).await?;
    audit::record(
        &mut *tx,
        audit::NewAuditEvent::tenant_action(tenant_id, actor, "admin.revoke", Some(email), now),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the role of someone who already has one in the tenant. Nobody
/// else: a person joins a tenant by accepting an invitation (or by a
/// superadmin's grant), so an email without a role here is `404` whether or
/// not it has an account.
#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn change_role(
    pool: &AnyPool,
    tenant_id: &TenantId,
    email: &str,
    role: accounts::Role,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let member: Option<(AdminId,)> = sqlx::query_as(
        "SELECT m.user_id FROM memberships m JOIN admin_users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND u.email = $2",
    )
    .bind(tenant_id)
    .bind(email)
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id,) = member.ok_or(DomainError::NotFound("role"))?;
    accounts::grant_audited(&mut tx, tenant_id, (&user_id, email), role, actor, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Someone with a role in a tenant, and since when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRole {
    pub user_id: AdminId,
    pub email: String,
    pub role: String,
    pub created_at: UnixTime,
}

/// Everyone with a role in the tenant, newest role first, a page at a time
/// (keyset on when the role was given, then the account id, as keys are).
pub async fn tenant_roles(
    pool: &AnyPool,
    tenant_id: &TenantId,
    cursor: Option<&str>,
    limit: i64,
) -> DomainResult<Page<TenantRole>> {
    let cursor = cursor.map(page::time_and_id).transpose()?;
    let (after, limit_at) = if cursor.is_some() {
        (" AND (m.created_at, m.user_id) < ($2, $3)", "$4")
    } else {
        ("", "$2")
    };
    let sql = format!(
        "SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m JOIN admin_users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1{after} ORDER BY m.created_at DESC, m.user_id DESC LIMIT {limit_at}"
    );
    let mut query = sqlx::query_as::<_, TenantRole>(&sql).bind(tenant_id);
    if let Some((created_at, user_id)) = cursor {
        query = query.bind(created_at).bind(user_id);
    }
    let rows = query.bind(limit + 1).fetch_all(pool).await?;
    Ok(Page::from_overfetch(rows, limit, |r| {
        format!("{}.{}", r.created_at.secs(), r.user_id)
    }))
}
