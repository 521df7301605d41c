//! Opening a database that `keysmith migrate` (or `serve`) prepared, for the
//! commands that must never create or migrate one (`keysmith gateway`): a
//! missing database or one whose schema is behind this binary is refused
//! with a message naming `keysmith migrate`.

use anyhow::Context;

use super::Db;
use crate::config::{DatabaseUrl, Engine};

/// Connects to an existing database, creating nothing (no file, no
/// directory), and checks that every migration of this binary is applied.
pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Db> {
    let url = match url.engine() {
        Engine::Sqlite => {
            if let Some(path) = super::sqlite_path(url.expose())
                && !path.exists()
            {
                anyhow::bail!(
                    "no database at {} (KEYSMITH_DATABASE_URL): run `keysmith migrate` first; this command never creates one",
                    path.display()
                );
            }
            // `mode=rwc` would create the file if it vanished meanwhile.
            DatabaseUrl::parse(&url.expose().replace("mode=rwc", "mode=rw"))?
        }
        Engine::Postgres => url.clone(),
    };
    let db = Db::connect_only(&url).await?;
    ensure_current(&db, &url).await?;
    Ok(db)
}

/// Refuses a database whose schema lacks a migration this binary has.
async fn ensure_current(db: &Db, url: &DatabaseUrl) -> anyhow::Result<()> {
    let applied: Vec<(i64,)> = match sqlx::query_as(
        "SELECT version FROM _sqlx_migrations WHERE success = TRUE",
    )
    .fetch_all(&db.pool)
    .await
    {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(_)) => anyhow::bail!(
            "the database at {url} has no Keysmith schema: run `keysmith migrate` first; this command never migrates"
        ),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read the schema version of {url}"));
        }
    };
    let applied: std::collections::HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
    let missing: Vec<i64> = super::migrator(db.engine)
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if let Some(first) = missing.first() {
        anyhow::bail!(
            "the database at {url} is behind this keysmith ({} migration(s) not applied, from {first:04}): run `keysmith migrate` first; this command never migrates",
            missing.len()
        );
    }
    Ok(())
}
