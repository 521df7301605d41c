//! First run: while no admin account exists, `keysmith serve` prints a
//! single-use link (a random token, valid one hour) with which whoever reads
//! the server's output creates the first superadmin in the browser.
//!
//! Only a SHA-256 of the token is kept, in this process's memory: a restart
//! prints a fresh link, and nothing of it is ever in the database or a log.
//! Creating the account takes the token (one request wins) and succeeds only
//! while there is still no admin at all, on every instance sharing the
//! database.

use crate::domain::UnixTime;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::domain::crypto::random;
use crate::domain::{
    Email,
    people::accounts::{self, AdminAccount, Password},
};
use crate::{
    db::begin_write,
    domain::error::{DomainError, DomainResult},
};

/// How long a printed setup link works.
pub const LIFETIME: Duration = Duration::hours(1);

/// The token as printed once; redacted everywhere else.
pub struct SetupSecret(String);

impl SetupSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SetupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupSecret([redacted])")
    }
}

#[derive(Debug)]
struct Pending {
    digest: [u8; 32],
    expires_at: OffsetDateTime,
}

/// This process's setup token, if one is outstanding. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FirstRun(Arc<Mutex<Option<Pending>>>);

impl FirstRun {
    /// Issues a fresh token when the database has no admin yet.
    pub async fn issue_if_needed(
        &self,
        pool: &AnyPool,
        now: OffsetDateTime,
    ) -> DomainResult<Option<SetupSecret>> {
        if any_admin(pool).await? {
            return Ok(None);
        }
        let secret = random::base62(32);
        *self.pending() = Some(Pending {
            digest: Sha256::digest(secret.as_bytes()).into(),
            expires_at: now + LIFETIME,
        });
        Ok(Some(SetupSecret(secret)))
    }

    /// Whether `presented` is the outstanding, unexpired token.
    pub fn is_valid(&self, presented: &str, now: OffsetDateTime) -> bool {
        self.pending()
            .as_ref()
            .is_some_and(|p| matches(p, presented, now))
    }

    /// Creates the first superadmin with the token, which is spent on
    /// success. A refused attempt (wrong token, an admin already there)
    /// changes nothing.
    pub async fn complete(
        &self,
        pool: &AnyPool,
        presented: &str,
        email: &Email,
        password: Password,
        now: OffsetDateTime,
    ) -> DomainResult<AdminAccount> {
        // Taken before the slow hash, so two requests cannot both use it.
        let taken = {
            let mut pending = self.pending();
            match pending.take() {
                Some(p) if matches(&p, presented, now) => p,
                other => {
                    *pending = other;
                    return Err(DomainError::NotFound(
                        "setup link (used, expired or restarted)",
                    ));
                }
            }
        };
        let created = create_first(pool, email, password, now).await;
        if created.is_err() && !any_admin(pool).await.unwrap_or(true) {
            // Nothing was created: the link still works for another try.
            *self.pending() = Some(taken);
        }
        created
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        // A poisoned lock only means a panic elsewhere; the data is a plain value.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn matches(pending: &Pending, presented: &str, now: OffsetDateTime) -> bool {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let same: bool = digest.ct_eq(&pending.digest).into();
    same && now < pending.expires_at
}

async fn any_admin(pool: &AnyPool) -> DomainResult<bool> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admin_users")
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// Inserts the superadmin only while no admin exists, as one write: SQLite
/// serializes writers, PostgreSQL takes an advisory lock for the check.
async fn create_first(
    pool: &AnyPool,
    email: &Email,
    password: Password,
    now: OffsetDateTime,
) -> DomainResult<AdminAccount> {
    let hash = accounts::hash_password(password).await?;
    let mut tx = begin_write(pool).await?;
    if pool.connect_options().database_url.scheme() != "sqlite" {
        sqlx::query("SELECT pg_advisory_xact_lock(7340001)")
            .execute(&mut *tx)
            .await?;
    }
    let id = random::base62(16);
    let inserted = sqlx::query(
        "INSERT INTO admin_users (id, email, password_hash, is_superadmin, created_at) \
         SELECT $1, $2, $3, 1, $4 WHERE NOT EXISTS (SELECT 1 FROM admin_users)",
    )
    .bind(&id)
    .bind(email.as_str())
    .bind(&hash)
    .bind(UnixTime::from(now))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() != 1 {
        return Err(DomainError::Conflict(
            "an admin account exists already: sign in instead".to_owned(),
        ));
    }
    tx.commit().await?;
    tracing::info!(admin_id = %id, "first superadmin created through the setup link");
    accounts::find_by_email(pool, email.as_str())
        .await?
        .ok_or(DomainError::NotFound("admin"))
}
