//! The database: one `sqlx::AnyPool` over SQLite or PostgreSQL, one migration
//! set per engine. Queries are written once, in the SQL both engines accept
//! (`$n` placeholders, Unix-second timestamps, text ids).

use std::str::FromStr;

use anyhow::Context;
use sqlx::{AnyPool, Executor, any::AnyPoolOptions};

use crate::{
    config::{DatabaseUrl, Engine},
    error::AppError,
};

pub mod backup;
pub mod existing;

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
}

impl Db {
    #[tracing::instrument(skip_all, fields(url = %url))]
    pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = url.engine();
        if !url.ignored_params().is_empty() {
            tracing::warn!(params = ?url.ignored_params(), "ignoring database URL parameters the driver does not read");
        }
        if engine == Engine::Sqlite {
            create_sqlite_parent_dir(url.expose())?;
        }
        Self::connect_only(url).await
    }

    /// [`Db::connect`] without preparing anything on disk for SQLite.
    async fn connect_only(url: &DatabaseUrl) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = url.engine();
        let options = sqlx::any::AnyConnectOptions::from_str(url.expose())
            .context("failed to parse the database URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite { 8 } else { 16 })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets readers proceed during writes; the busy timeout
                        // queues writers instead of failing them.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("failed to connect to the database at {url}"))?;
        Ok(Self { pool, engine })
    }

    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrator(self.engine)
            .run(&self.pool)
            .await
            .context("failed to apply database migrations")
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// This binary's migrations for `engine`.
fn migrator(engine: Engine) -> sqlx::migrate::Migrator {
    match engine {
        Engine::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Engine::Postgres => sqlx::migrate!("migrations/postgres"),
    }
}

/// The file a `sqlite:` URL names; `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Created private; an existing directory is not ours to change.
        if !dir.exists() {
            crate::files::private_dir(dir)?;
        }
    }
    // The database holds sessions and hashes: 0600 before SQLite opens it,
    // so its -wal and -shm files get the same mode.
    crate::files::private_file(&path)?;
    Ok(())
}

/// Turns a unique-constraint violation into a user-facing conflict. The
/// caller knows which constraint its statement can violate; both engines
/// report the violation's kind (SQLite does not report constraint names).
pub trait OnUniqueViolation<T> {
    fn on_unique_violation(self, conflict: impl FnOnce() -> AppError) -> Result<T, AppError>;
}

impl<T> OnUniqueViolation<T> for Result<T, sqlx::Error> {
    fn on_unique_violation(self, conflict: impl FnOnce() -> AppError) -> Result<T, AppError> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
            _ => AppError::from(err),
        })
    }
}

/// Announces a revoked or rotated key to verification layers on other
/// instances (PostgreSQL `NOTIFY`, delivered at commit). SQLite: nothing to do,
/// a single file has no other instances to tell.
pub async fn announce_key_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pool: &AnyPool,
    key_id: &str,
) -> Result<(), sqlx::Error> {
    if pool.connect_options().database_url.scheme() != "sqlite" {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(keysmith_verify::backend::invalidation::CHANNEL)
            .bind(key_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// ` FOR UPDATE` on PostgreSQL, to lock a row a transaction reads and then
/// rewrites (read, merge, check, write); empty on SQLite, where
/// [`begin_write`] already holds the only write lock.
pub fn row_lock(pool: &AnyPool) -> &'static str {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        ""
    } else {
        " FOR UPDATE"
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock up
/// front (`BEGIN IMMEDIATE`): a deferred transaction that reads and then
/// writes fails with `SQLITE_BUSY` when another writer got in between, while
/// an immediate one simply waits its turn (busy timeout).
pub async fn begin_write(
    pool: &AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

/// Serializes per-tenant caps (count, then insert): on PostgreSQL, locks the
/// tenant's row for the transaction, so two creations at once cannot both
/// see room for one more; on SQLite [`begin_write`] already does.
pub async fn lock_tenant(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pool: &AnyPool,
    tenant_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "SELECT id FROM tenants WHERE id = $1{}",
        row_lock(pool)
    ))
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(())
}
