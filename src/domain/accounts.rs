//! An admin account's lifecycle: whether its sessions still hold, disabling
//! and enabling it, ending its sessions. Every change is one transaction
//! with its `account_events` row.

use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::{
    domain::Actor,
    error::{AppError, AppResult},
};
use keysmith_verify::timestamp;

/// What every admin request re-reads about its account: one primary-key row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountState {
    pub is_superadmin: i64,
    pub disabled_at: Option<i64>,
    pub session_epoch: i64,
}

impl AccountState {
    /// Whether a session opened in `epoch` may go on.
    pub fn admits(&self, epoch: i64) -> bool {
        self.disabled_at.is_none() && self.session_epoch == epoch
    }
}

pub async fn state(pool: &AnyPool, user_id: &str) -> AppResult<Option<AccountState>> {
    Ok(sqlx::query_as(
        "SELECT is_superadmin, disabled_at, session_epoch FROM admin_users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Records what happened to an account, inside the caller's transaction.
pub async fn record_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
    actor: &Actor,
    action: &str,
    detail: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO account_events (user_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(actor.to_string())
    .bind(action)
    .bind(detail)
    .bind(timestamp::to_unix(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends every session of the account at once (their next request is refused).
pub async fn bump_epoch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
) -> AppResult<()> {
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
) -> AppResult<String> {
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(String,)> = sqlx::query_as(
        "UPDATE admin_users SET disabled_at = $1, session_epoch = session_epoch + 1 \
         WHERE email = $2 RETURNING id",
    )
    .bind(disabled.then(|| timestamp::to_unix(now)))
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id,) = found.ok_or(AppError::NotFound("account"))?;
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
    user_id: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> AppResult<()> {
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
