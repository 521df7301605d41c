//! `keysmith backup` and `keysmith restore` for the embedded SQLite database.
//!
//! A backup is `VACUUM INTO` a new file: one read transaction, so the copy is
//! consistent while the server keeps serving and writing (WAL readers never
//! block writers). A restore checks that the file is a Keysmith database this
//! binary can run (intact, not from a newer version), then swaps it in
//! atomically. The pepper is never in a backup: without the pepper file the
//! database it signed is useless (every key, TOTP secret and webhook secret),
//! which is also why it belongs on another volume. PostgreSQL has its own
//! tools (`pg_dump`), named in the refusal.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};

use crate::config::{DatabaseUrl, Engine};

/// What a backup or restore did, for the command's one line of output.
#[derive(Debug)]
pub struct Copied {
    pub database: PathBuf,
    pub file: PathBuf,
    pub bytes: u64,
    /// The newest migration the copy holds.
    pub schema_version: i64,
}

/// Copies the database at `url` into `target`, which must not exist yet.
pub async fn backup(url: &DatabaseUrl, target: &Path) -> anyhow::Result<Copied> {
    let database = sqlite_file(url, "backup")?;
    if !database.exists() {
        bail!(
            "no database at {} (KEYSMITH_DATABASE_URL): nothing to back up",
            database.display()
        );
    }
    // Created empty and private first: the copy holds key hashes and sealed
    // secrets, and VACUUM INTO accepts an empty file.
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .with_context(|| {
            format!(
                "cannot create {} (a backup never overwrites a file)",
                target.display()
            )
        })?;
    let copied = async {
        let mut source = open_existing(&database).await?;
        let target_text = target
            .to_str()
            .context("the backup file's path is not UTF-8")?;
        sqlx::query("VACUUM INTO $1")
            .bind(target_text)
            .execute(&mut source)
            .await
            .context("the copy failed")?;
        source.close().await.ok();
        checked(target).await
    }
    .await;
    match copied {
        Ok(schema_version) => Ok(Copied {
            bytes: fs::metadata(target)?.len(),
            database,
            file: target.to_owned(),
            schema_version,
        }),
        Err(err) => {
            let _ = fs::remove_file(target);
            Err(err.context(format!("backup of {} failed", database.display())))
        }
    }
}

/// Replaces the database at `url` with the backup `source`. An existing
/// database is replaced only with `force` (the server must be stopped).
pub async fn restore(url: &DatabaseUrl, source: &Path, force: bool) -> anyhow::Result<Copied> {
    let database = sqlite_file(url, "restore")?;
    let schema_version = checked(source)
        .await
        .with_context(|| format!("{} is not a Keysmith SQLite backup", source.display()))?;
    let newest_known = sqlx::migrate!("migrations/sqlite")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or_default();
    if schema_version > newest_known {
        bail!(
            "{} is from a newer Keysmith (schema {schema_version}, this binary knows up to {newest_known}): restore it with that version",
            source.display()
        );
    }
    if database.exists() && !force {
        bail!(
            "a database exists at {} (KEYSMITH_DATABASE_URL); stop the server, then `keysmith restore --force` replaces it",
            database.display()
        );
    }
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::private_dir(dir)?;
    }
    // Copied beside the database, then renamed over it: a crash leaves the
    // old database or the new one, never half of one.
    let staged = database.with_extension("restoring");
    let _ = fs::remove_file(&staged);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged)
        .with_context(|| format!("cannot create {}", staged.display()))?;
    out.write_all(&fs::read(source)?)?;
    out.sync_all()?;
    drop(out);
    // The old database's journal describes the old file: it must not be
    // replayed into the restored one.
    for suffix in ["-wal", "-shm"] {
        let mut journal = database.clone().into_os_string();
        journal.push(suffix);
        let _ = fs::remove_file(journal);
    }
    fs::rename(&staged, &database).with_context(|| {
        format!(
            "cannot move the restored database to {}",
            database.display()
        )
    })?;
    Ok(Copied {
        bytes: fs::metadata(&database)?.len(),
        database,
        file: source.to_owned(),
        schema_version,
    })
}

/// The SQLite file of `url`; PostgreSQL and in-memory databases are refused
/// with what to use instead.
fn sqlite_file(url: &DatabaseUrl, action: &str) -> anyhow::Result<PathBuf> {
    if url.engine() == Engine::Postgres {
        bail!(
            "keysmith {action} copies the embedded SQLite database; for PostgreSQL use pg_dump and pg_restore (the book: Operating, Backups)"
        );
    }
    match super::sqlite_path(url.expose()) {
        Some(path) => Ok(path),
        None => bail!("an in-memory database has nothing to {action}"),
    }
}

/// The live database, as the server opens it (it may be in WAL mode with a
/// server writing); never created here.
async fn open_existing(path: &Path) -> anyhow::Result<SqliteConnection> {
    SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .busy_timeout(std::time::Duration::from_secs(5)),
    )
    .await
    .with_context(|| format!("cannot open {}", path.display()))
}

/// Opens `path` read-only and returns its newest migration, if it is an
/// intact Keysmith database.
async fn checked(path: &Path) -> anyhow::Result<i64> {
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(true),
    )
    .await
    .with_context(|| format!("cannot open {}", path.display()))?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .context("not a SQLite database")?;
    if integrity != "ok" {
        bail!("the file is damaged: {integrity}");
    }
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .context("no Keysmith schema in it")?;
    conn.close().await.ok();
    version.context("no Keysmith schema in it")
}
