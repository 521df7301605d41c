//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step
//! of skew) and single-use recovery codes. The shared secret is stored
//! encrypted under the pepper, recovery codes as an HMAC under it: a copy of
//! the database alone yields neither.

mod secret;

use crate::domain::{AdminId, TenantId, UnixTime};
use sqlx::AnyPool;
use time::OffsetDateTime;

pub use self::secret::TotpSecret;
use self::secret::{open, recovery_hash, seal};
use crate::domain::crypto::random;
use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{Actor, audit, people::lifecycle},
};
use keysmith_verify::Peppers;

pub const RECOVERY_CODES: usize = 10;

/// Whether the account has TOTP on, and whether it must (instance or one of
/// its tenants requires it).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Status {
    pub enabled: bool,
    pub required_by_tenant: bool,
}

pub async fn status(pool: &AnyPool, user_id: &AdminId) -> DomainResult<Status> {
    let (enabled, tenants): (Option<i64>, i64) = sqlx::query_as(
        "SELECT totp_enabled_at, (SELECT COUNT(*) FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
         WHERE m.user_id = $1 AND t.require_totp = 1) FROM admin_users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok(Status {
        enabled: enabled.is_some(),
        required_by_tenant: tenants > 0,
    })
}

/// The secret to enrol with, kept (sealed) until confirmed with a code: the
/// one already shown if any (a reload or a mistyped code must not change
/// the QR code already scanned), else a fresh one.
pub async fn start_enrolment(
    pool: &AnyPool,
    peppers: &Peppers,
    user_id: &AdminId,
) -> DomainResult<TotpSecret> {
    let pending: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT totp_pending FROM admin_users WHERE id = $1 AND totp_enabled_at IS NULL",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    if let Some((Some(sealed),)) = pending {
        return open(peppers, user_id, &sealed);
    }
    let secret = TotpSecret::generate()?;
    sqlx::query(
        "UPDATE admin_users SET totp_pending = $1 WHERE id = $2 AND totp_enabled_at IS NULL",
    )
    .bind(seal(peppers, user_id, &secret)?)
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(secret)
}

/// Accepts `code` for the step it matches only if no code of that step or a
/// later one was accepted before: one conditional update, so a replayed or
/// raced code wins at most once.
async fn claim_step(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &AdminId,
    step: i64,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "UPDATE admin_users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Confirms enrolment with a code from the pending secret: turns TOTP on,
/// ends the account's other sessions, and returns the recovery codes (shown
/// once) with the new session epoch.
pub async fn confirm_enrolment(
    pool: &AnyPool,
    peppers: &Peppers,
    user_id: &AdminId,
    code: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<(Vec<String>, i64)> {
    let wrong = || {
        DomainError::validation(
            "that code is not right: check the clock of the device and try the next one",
        )
    };
    let mut tx = crate::db::begin_write(pool).await?;
    let (pending,): (Option<String>,) = sqlx::query_as(
        "SELECT totp_pending FROM admin_users WHERE id = $1 AND totp_enabled_at IS NULL",
    )
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        DomainError::Conflict("two-factor sign-in is already on for this account".into())
    })?;
    let secret = open(peppers, user_id, &pending.ok_or_else(wrong)?)?;
    let step = secret.matching_step(code, now)?.ok_or_else(wrong)?;
    if !claim_step(&mut tx, user_id, step).await? {
        return Err(wrong());
    }
    let (epoch,): (i64,) = sqlx::query_as(
        "UPDATE admin_users SET totp_secret = totp_pending, totp_pending = NULL, totp_enabled_at = $1, \
         session_epoch = session_epoch + 1 WHERE id = $2 RETURNING session_epoch",
    )
    .bind(UnixTime::from(now))
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| random::base62(12)).collect();
    for code in &codes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(recovery_hash(
                peppers,
                peppers.current_version(),
                user_id,
                code,
            ))
            .execute(&mut *tx)
            .await?;
    }
    lifecycle::record_event(&mut tx, user_id, actor, "account.totp_enrol", None, now).await?;
    tx.commit().await?;
    Ok((codes, epoch))
}

/// The second sign-in step: a current code (never one accepted before) or an
/// unused recovery code (spent by a conditional update, so once only).
pub async fn verify(
    pool: &AnyPool,
    peppers: &Peppers,
    user_id: &AdminId,
    code: &str,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let code = code.trim();
    let mut tx = crate::db::begin_write(pool).await?;
    let ok = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        claim_current_code(&mut tx, peppers, user_id, code, now).await?
    } else {
        spend_recovery_code(&mut tx, peppers, user_id, code, now).await?
    };
    tx.commit().await?;
    Ok(ok)
}

/// Whether `code` is the account's current TOTP code, claiming its step.
async fn claim_current_code(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    peppers: &Peppers,
    user_id: &AdminId,
    code: &str,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let (sealed,): (Option<String>,) =
        sqlx::query_as("SELECT totp_secret FROM admin_users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(match sealed {
        None => false,
        Some(sealed) => match open(peppers, user_id, &sealed)?.matching_step(code, now)? {
            Some(step) => claim_step(tx, user_id, step).await?,
            None => false,
        },
    })
}

/// Whether `code` is an unused recovery code of the account, spending it.
async fn spend_recovery_code(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    peppers: &Peppers,
    user_id: &AdminId,
    code: &str,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    // Codes were hashed under the pepper current when they were issued:
    // after a pepper rotation they are looked up under every version
    // still loaded, so rotating the pepper does not lock anyone out.
    for version in peppers.versions() {
        let Some(hash) = recovery_hash(peppers, version, user_id, code) else {
            continue;
        };
        let spent = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(UnixTime::from(now))
        .bind(user_id)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
        if spent.rows_affected() == 1 {
            lifecycle::record_event(
                tx,
                user_id,
                &Actor::System,
                "account.recovery_code_used",
                None,
                now,
            )
            .await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Turns TOTP off for an account (a superadmin's reset: the device was
/// lost), forgets its recovery codes and ends its sessions.
pub async fn reset(
    pool: &AnyPool,
    email: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(AdminId,)> = sqlx::query_as(
        "UPDATE admin_users SET totp_secret = NULL, totp_pending = NULL, totp_enabled_at = NULL, \
         totp_last_step = NULL, session_epoch = session_epoch + 1 WHERE email = $1 RETURNING id",
    )
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id,) = found.ok_or(DomainError::NotFound("account"))?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    lifecycle::record_event(&mut tx, &user_id, actor, "account.totp_reset", None, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Makes a tenant require (or stop requiring) TOTP of its admins; audited.
/// Admins without it are sent to set it up on their next request.
pub async fn set_tenant_requirement(
    pool: &AnyPool,
    slug: &str,
    required: bool,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(TenantId,)> =
        sqlx::query_as("UPDATE tenants SET require_totp = $1 WHERE slug = $2 RETURNING id")
            .bind(i64::from(required))
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
    let (tenant_id,) = found.ok_or(DomainError::NotFound("tenant"))?;
    let action = if required {
        "tenant.require_totp"
    } else {
        "tenant.stop_requiring_totp"
    };
    audit::record(
        &mut *tx,
        audit::NewAuditEvent::tenant_action(&tenant_id, actor, action, None, now),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ids of the tenants that require TOTP of their admins.
pub async fn requiring_tenants(pool: &AnyPool) -> DomainResult<Vec<TenantId>> {
    let rows: Vec<(TenantId,)> = sqlx::query_as("SELECT id FROM tenants WHERE require_totp = 1")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
