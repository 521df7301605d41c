//! Admin accounts (humans): argon2id passwords, roles per tenant.

use crate::domain::{AdminId, TenantId, UnixTime};
use argon2::{Argon2, PasswordHash, PasswordHasher};
use serde::Serialize;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::crypto::random;
use crate::{
    db::OnUniqueViolation,
    domain::error::{DomainError, DomainResult},
    domain::{Actor, Email, audit},
};

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

/// A password as typed: never printed.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    /// Longer input is refused before any hashing (argon2 reads all of it).
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: String) -> DomainResult<Self> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(DomainError::validation(format!(
                "a password needs at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(DomainError::validation(
                "a password must be at most 1024 bytes",
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Argon2id with OWASP parameters (m = 19456 KiB, t = 2, p = 1).
pub fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes off the async runtime (on the hashing threads): argon2 takes tens
/// of milliseconds and ~19 MiB by design.
pub async fn hash_password(password: Password) -> DomainResult<String> {
    crate::domain::crypto::argon2_threads::run(move || {
        argon2()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("failed to hash a password: {err}"))
    })
    .await?
    .map_err(DomainError::Internal)
}

/// Checks `password` against `stored`, or against a dummy hash when the
/// account does not exist, so both cases take the same time. `slot` (a
/// hashing permit) is held until the hash is done, even if the request is
/// dropped meanwhile: the hashing job is what costs memory and CPU.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> DomainResult<bool> {
    crate::domain::crypto::argon2_threads::run(move || {
        let _slot = slot;
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&hash)
            .map_err(|err| anyhow::anyhow!("stored password hash is invalid: {err}"))?;
        let ok = verify_in_reused_memory(password.as_bytes(), &parsed)?;
        Ok::<_, anyhow::Error>(exists && ok)
    })
    .await?
    .map_err(DomainError::Internal)
}

thread_local! {
    /// Argon2's working memory (~19 MiB), allocated once per hashing thread
    /// and reused by every check on it: allocating it per check let the
    /// allocator keep a freed copy in each arena a thread wandered into,
    /// hundreds of MiB under a sign-in flood, never returned.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `argon2().verify_password`, but in this thread's reused working memory.
fn verify_in_reused_memory(password: &[u8], hash: &PasswordHash) -> anyhow::Result<bool> {
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Ok(false);
    };
    let invalid =
        |err: &dyn std::fmt::Display| anyhow::anyhow!("stored password hash is invalid: {err}");
    let params = argon2::Params::try_from(hash).map_err(|e| invalid(&e))?;
    let algorithm =
        argon2::Algorithm::try_from(hash.algorithm.as_str()).map_err(|e| invalid(&e))?;
    let version = hash
        .version
        .map(argon2::Version::try_from)
        .transpose()
        .map_err(|e| invalid(&e))?
        .unwrap_or_default();
    let blocks_needed = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < blocks_needed {
            blocks.resize(blocks_needed, argon2::Block::default());
        }
        hasher
            .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..blocks_needed])
            .map_err(|e| invalid(&e))
    })?;
    Ok(bool::from(subtle::ConstantTimeEq::ct_eq(
        &out[..],
        expected.as_bytes(),
    )))
}

/// The argon2id hash of a random string nobody knows, with the same parameters as real hashes.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vf9pc9CP8G5Z5pB5r6k0bB9o9S7c0vGvQz0t4M2Yc5Q";

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
    use argon2::PasswordVerifier;

    use super::*;

    #[test]
    fn dummy_hash_is_a_valid_argon2id_hash_with_real_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(argon2().verify_password(b"anything", &parsed).is_err());
        assert!(!verify_in_reused_memory(b"anything", &parsed).expect("checks"));
    }

    #[test]
    fn reused_memory_verification_agrees_with_argon2() {
        let hash = argon2()
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        let parsed = PasswordHash::new(&hash).expect("parses");
        assert!(verify_in_reused_memory(b"correct horse", &parsed).expect("checks"));
        assert!(!verify_in_reused_memory(b"correct horsE", &parsed).expect("checks"));
        assert!(verify_in_reused_memory(b"correct horse", &parsed).expect("twice, same memory"));
    }

    #[test]
    fn roles_order_and_permissions() {
        assert!(!Role::Viewer.can_manage_keys());
        assert!(Role::Admin.can_manage_keys());
        assert!(Role::Owner.can_manage_keys());
        assert_eq!(Role::parse("owner"), Some(Role::Owner));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn short_passwords_are_refused_and_debug_hides_them() {
        assert!(Password::parse("short".into()).is_err());
        let p = Password::parse("correct horse battery".into()).expect("long enough");
        assert!(!format!("{p:?}").contains("horse"));
    }
}
