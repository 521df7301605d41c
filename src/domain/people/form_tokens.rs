//! Single-use form tokens: a create or rotate form can mint a key once. The
//! token is spent by one conditional `DELETE`, so of any number of concurrent
//! POSTs carrying it exactly one wins; a browser re-POST finds it spent.

use crate::domain::{AdminId, UnixTime};
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::crypto::random;
use crate::{domain::crypto::secret_hash, domain::error::DomainResult};

/// An open form stays usable this long (the absolute session lifetime).
const LIFETIME_SECS: i64 = 12 * 3600;

/// Issues a token for `user_id`; only its hash is stored.
#[tracing::instrument(skip_all, fields(user_id))]
pub async fn issue(pool: &AnyPool, user_id: &AdminId, now: OffsetDateTime) -> DomainResult<String> {
    let token = random::base62(24);
    sqlx::query("INSERT INTO form_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(secret_hash(&token))
        .bind(user_id)
        .bind(UnixTime::from(now) + time::Duration::seconds(LIFETIME_SECS))
        .execute(pool)
        .await?;
    Ok(token)
}

/// Spends `token` for `user_id`: true for exactly one caller, false if it was
/// never issued to this account, expired or already spent.
#[tracing::instrument(skip_all, fields(user_id))]
pub async fn spend(
    pool: &AnyPool,
    user_id: &AdminId,
    token: &str,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "DELETE FROM form_tokens WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
    )
    .bind(secret_hash(token))
    .bind(user_id)
    .bind(UnixTime::from(now))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets expired tokens (scheduler).
pub async fn purge(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<u64> {
    let done = sqlx::query("DELETE FROM form_tokens WHERE expires_at <= $1")
        .bind(UnixTime::from(now))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
