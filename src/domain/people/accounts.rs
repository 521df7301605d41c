//! Admin accounts (humans) and their roles per tenant; their passwords are
//! hashed and checked in `passwords`.

use crate::domain::{AdminId, TenantId, UnixTime};
use serde::Serialize;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::crypto::random;
use crate::{
    db::OnUniqueViolation,
    domain::error::{DomainError, DomainResult},
    domain::{Actor, Email, audit},
};

pub use super::passwords::{Password, argon2, hash_password, verify_password};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "viewer" => Some(Self::Viewer),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    /// Viewers read; admins and owners also create, rotate and revoke.
    pub fn can_manage_keys(self) -> bool {
        self >= Self::Admin
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminAccount {
    pub id: AdminId,
    pub email: String,
    #[sqlx(default)]
    pub password_hash: String,
    pub is_superadmin: i64,
    /// Sessions opened now remember this (see `accounts`).
    #[sqlx(default)]
    pub session_epoch: i64,
}

#[tracing::instrument(skip_all, fields(email = %email))]
pub async fn create(
    pool: &AnyPool,
    email: &Email,
    password: Password,
    superadmin: bool,
    now: OffsetDateTime,
) -> DomainResult<AdminAccount> {
    let hash = hash_password(password).await?;
    insert(pool, email, hash, superadmin, now).await
}

/// Writes a new account whose password is already hashed.
async fn insert<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    email: &Email,
    password_hash: String,
    superadmin: bool,
    now: OffsetDateTime,
) -> DomainResult<AdminAccount> {
    let id = AdminId::new(random::base62(16));
    sqlx::query(
        "INSERT INTO admin_users (id, email, password_hash, is_superadmin, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(email.as_str())
    .bind(&password_hash)
    .bind(i64::from(superadmin))
    .bind(UnixTime::from(now))
    .execute(executor)
    .await
    .on_unique_violation(|| DomainError::Conflict(format!(
                "an admin with email {email} already exists"
            )))?;
    Ok(AdminAccount {
        id,
        email: email.as_str().to_owned(),
        password_hash,
        is_superadmin: i64::from(superadmin),
        session_epoch: 0,
    })
}

pub async fn find_by_email(pool: &AnyPool, email: &str) -> DomainResult<Option<AdminAccount>> {
    Ok(sqlx::query_as(
        "SELECT id, email, password_hash, is_superadmin, session_epoch FROM admin_users WHERE email = $1 AND disabled_at IS NULL",
    )
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(pool)
    .await?)
}

/// Grants `role` in a tenant (replacing any earlier role).
pub async fn grant(
    pool: &AnyPool,
    tenant_id: &TenantId,
    user_id: &AdminId,
    role: Role,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    set_role(&mut tx, tenant_id, user_id, role, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces any earlier role of the user in the tenant, inside `tx`. A
/// lowered role ends the account's open sessions; a raised one takes effect
/// in them on their next request (roles are re-read on every request), so a
/// promotion does not sign anyone out.
pub(super) async fn set_role(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant_id: &TenantId,
    user_id: &AdminId,
    role: Role,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let previous: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    if previous.is_some_and(|(was,)| Role::parse(&was).is_none_or(|was| role < was)) {
        end_sessions_on_demotion(tx, user_id).await?;
    }
    sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(UnixTime::from(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends the sessions of an account whose role in a tenant was lowered or
/// removed, unless it is a superadmin: a superadmin owns every tenant
/// whatever its memberships say, so a tenant lowering one changes nothing it
/// may do, and must not be a way to keep the instance's administrators
/// signed out.
pub async fn end_sessions_on_demotion(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &AdminId,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE admin_users SET session_epoch = session_epoch + 1 \
         WHERE id = $1 AND is_superadmin = 0",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Gives `email` a `role` in a tenant, creating the account when it does not
/// exist yet. A new account needs an initial password; an existing one must
/// not get one here (nobody resets another admin's password by accident).
/// One transaction: either the account and its role exist, or neither.
#[tracing::instrument(skip_all, fields(tenant_id, email = %email))]
pub async fn add_to_tenant(
    pool: &AnyPool,
    tenant_id: &TenantId,
    email: &Email,
    role: Role,
    initial_password: Option<Password>,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<AdminAccount> {
    let hash = match initial_password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let mut tx = crate::db::begin_write(pool).await?;
    let existing: Option<AdminAccount> = sqlx::query_as(
        "SELECT id, email, password_hash, is_superadmin FROM admin_users WHERE email = $1",
    )
    .bind(email.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let user = match (existing, hash) {
        (Some(_), Some(_)) => {
            return Err(DomainError::Conflict(format!(
                "{email} already has an account: leave the password empty to add them with their own"
            )));
        }
        (None, None) => {
            return Err(DomainError::validation(format!(
                "{email} has no account yet: set an initial password for it"
            )));
        }
        (Some(user), None) => user,
        (None, Some(hash)) => insert(&mut *tx, email, hash, false, now).await?,
    };
    grant_audited(
        &mut tx,
        tenant_id,
        (&user.id, email.as_str()),
        role,
        actor,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Sets the role of `(user id, email)` in the tenant inside `tx` and audits
/// it as `admin.grant` by `actor`.
pub(super) async fn grant_audited(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant_id: &TenantId,
    (user_id, email): (&AdminId, &str),
    role: Role,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    set_role(tx, tenant_id, user_id, role, now).await?;
    let what = format!("{email} as {}", role.as_str());
    audit::record(
        &mut **tx,
        audit::NewAuditEvent::tenant_action(tenant_id, actor, "admin.grant", Some(&what), now),
    )
    .await
}

/// Who administers a tenant, as shown on the superadmin page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantAdmin {
    pub tenant_id: TenantId,
    pub email: String,
    pub role: String,
}

/// Every membership of every tenant, by tenant then email.
pub async fn tenant_admins(pool: &AnyPool) -> DomainResult<Vec<TenantAdmin>> {
    Ok(sqlx::query_as(
        "SELECT m.tenant_id, u.email, m.role FROM memberships m \
         JOIN admin_users u ON u.id = m.user_id ORDER BY m.tenant_id, u.email",
    )
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_permissions() {
        assert!(!Role::Viewer.can_manage_keys());
        assert!(Role::Admin.can_manage_keys());
        assert!(Role::Owner.can_manage_keys());
        assert_eq!(Role::parse("owner"), Some(Role::Owner));
        assert_eq!(Role::parse("root"), None);
    }
}
