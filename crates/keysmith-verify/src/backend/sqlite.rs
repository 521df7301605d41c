//! Plain SQLite connections (rusqlite) beside sqlx's pool, for the two hot
//! paths: the verifier's point read and the audit writer.
//!
//! Why: sqlx runs every SQLite statement on a per-connection worker thread
//! and hands it over through channels; that hop costs tens of microseconds,
//! an order of magnitude more than an indexed point read (a few µs with a
//! prepared statement). rusqlite links the same `libsqlite3-sys` as sqlx
//! (one SQLite library in the process), and the database is in WAL mode
//! (set by the server's pool), so these connections read while the pool
//! writes.

use std::{
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use sqlx::AnyPool;
use tokio::sync::Semaphore;

/// How long a statement waits for a lock held by another connection, on a
/// thread where waiting blocks nobody else.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections kept for reuse; more are opened under contention.
const IDLE_READERS: usize = 8;

/// Reads allowed to wait for a lock at once, each on a blocking-pool thread
/// with a connection of its own. One more fails at once (`SQLITE_BUSY`, a
/// backend error: the request is refused, fail closed) rather than take
/// another thread while the database stays locked.
const WAITING_READS: usize = 32;

/// The SQLite database file behind `pool`, or `None` when it is not SQLite
/// or has no file of its own (an in-memory database is private to the
/// connection that opened it).
pub(crate) fn database_file(pool: &AnyPool) -> Option<PathBuf> {
    let url = &pool.connect_options().database_url;
    if url.scheme() != "sqlite" {
        return None;
    }
    // sqlx's own reading of the URL, so both open the same file.
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.as_str()).ok()?;
    let file = options.get_filename();
    let name = file.to_string_lossy();
    if name.is_empty() || name.contains(":memory:") || name.starts_with("file:") {
        return None;
    }
    Some(file.to_path_buf())
}

/// Opens a connection to an existing database file (never creates one)
/// that waits up to `busy_timeout` for another connection's lock, from its
/// first statement on (setting `synchronous` reads the schema).
pub(crate) fn open(file: &std::path::Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// A few connections for point reads, each with its statements cached.
#[derive(Debug)]
pub(crate) struct Readers {
    file: PathBuf,
    idle: Mutex<Vec<Connection>>,
    waiting: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(file: PathBuf) -> Self {
        Self {
            file,
            idle: Mutex::new(Vec::new()),
            waiting: Arc::new(Semaphore::new(WAITING_READS)),
        }
    }

    /// Runs `read(conn, arg)` on the calling thread (a point read costs less
    /// than handing it to another thread) without waiting for any lock. The
    /// calling thread serves other requests too: if another connection holds
    /// a lock the read needs (SQLITE_BUSY: a database not in WAL mode being
    /// written, a writer in exclusive locking mode), the read runs again on
    /// tokio's blocking pool, which may wait up to [`BUSY_TIMEOUT`] for it
    /// (at most [`WAITING_READS`] at once).
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: fn(&Connection, &str) -> rusqlite::Result<T>,
        arg: &str,
    ) -> rusqlite::Result<T> {
        match self.with(Duration::ZERO, |conn| read(conn, arg)) {
            Err(busy) if is_busy(&busy) => {
                let Ok(waiting) = Arc::clone(&self.waiting).try_acquire_owned() else {
                    return Err(busy);
                };
                let (readers, arg) = (Arc::clone(self), arg.to_owned());
                match tokio::task::spawn_blocking(move || {
                    let _waiting = waiting;
                    readers.with(BUSY_TIMEOUT, |conn| read(conn, &arg))
                })
                .await
                {
                    Ok(result) => result,
                    Err(failed) if failed.is_panic() => {
                        std::panic::resume_unwind(failed.into_panic())
                    }
                    // The runtime is shutting down and the read never ran.
                    Err(_) => Err(busy),
                }
            }
            result => result,
        }
    }

    /// Runs `read` on an idle connection (or a new one), waiting up to
    /// `wait` for a lock; idle connections keep a wait of zero.
    fn with<T>(
        &self,
        wait: Duration,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let taken = self.lock().pop();
        let conn = match taken {
            Some(conn) => conn,
            None => open(&self.file, wait)?,
        };
        let result = if wait.is_zero() {
            read(&conn)
        } else {
            conn.busy_timeout(wait)?;
            let result = read(&conn);
            // A connection that cannot be set back is closed, not kept.
            conn.busy_timeout(Duration::ZERO)?;
            result
        };
        let mut idle = self.lock();
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves only a list of connections behind.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

#[cfg(test)]
mod tests;
