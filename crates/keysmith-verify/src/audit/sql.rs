//! The SQL writer: batches from the queue into `audit_events`, through the
//! cheapest path the database offers (see [`Destination`]).

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::{AuditFlusher, AuditRecord, AuditSink, postgres, row, sqlite::SqliteWriter};

/// How long the writer waits for a batch to fill before writing it: the most
/// an event waits for its row when traffic is light.
const LINGER: Duration = Duration::from_millis(20);

/// How often the writer looks at the queue while a batch fills.
const TICK: Duration = Duration::from_millis(2);

/// Starts the writer: batches of up to `batch_size`, queue of `capacity`.
///
/// A batch holds what arrived while the writer lingered, so `batch_size`
/// matters when the database slows: it is how many events one commit can
/// catch up on. Pick it near `capacity` (say half): a writer whose batches
/// are full at the normal rate cannot catch up, and once the queue is full
/// every request waits for room.
pub fn spawn_sql_audit(
    pool: AnyPool,
    batch_size: usize,
    capacity: usize,
) -> (AuditSink, AuditFlusher) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (stop, stopped) = oneshot::channel();
    let destination = Destination::for_pool(pool);
    let task = tokio::spawn(write_loop(destination, rx, stopped, batch_size.max(1)));
    (AuditSink::new(tx), AuditFlusher { stop, task })
}

/// Where batches go.
#[derive(Debug)]
enum Destination {
    /// A SQLite file: a plain connection on a thread of its own.
    Sqlite(SqliteWriter),
    /// PostgreSQL: one `UNNEST` statement per batch on a native connection.
    Postgres(sqlx::PgPool),
    /// Anything else (an in-memory SQLite database, private to sqlx's pool):
    /// one multi-row `INSERT` through the pool.
    Any(AnyPool),
}

impl Destination {
    fn for_pool(pool: AnyPool) -> Self {
        let url = &pool.connect_options().database_url;
        if url.scheme().starts_with("postgres") {
            match postgres::pool(url.as_str()) {
                Ok(native) => return Self::Postgres(native),
                Err(err) => {
                    tracing::warn!(error = %err, "audit: no native PostgreSQL pool; writing through the shared one")
                }
            }
        }
        if let Some(file) = crate::backend::sqlite::database_file(&pool) {
            match SqliteWriter::spawn(file) {
                Ok(writer) => return Self::Sqlite(writer),
                Err(err) => {
                    tracing::warn!(error = %err, "audit: no writer thread; writing through the shared pool")
                }
            }
        }
        Self::Any(pool)
    }

    /// Writes `batch`; empties it on success, keeps it for a retry on failure.
    async fn write(&self, batch: &mut Vec<AuditRecord>) -> Result<(), String> {
        let result = match self {
            Self::Sqlite(writer) => return writer.write(batch).await,
            Self::Postgres(pool) => postgres::write(pool, batch).await,
            Self::Any(pool) => write_batch(pool, batch).await,
        };
        result.map_err(|err| err.to_string())?;
        batch.clear();
        Ok(())
    }
}

/// Moves what is queued into `batch`, up to `batch_size`; `true` while the
/// batch has room and more may come.
fn drain(
    rx: &mut mpsc::Receiver<AuditRecord>,
    batch: &mut Vec<AuditRecord>,
    batch_size: usize,
) -> bool {
    while batch.len() < batch_size {
        match rx.try_recv() {
            Ok(record) => batch.push(record),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
    false
}

async fn write_loop(
    destination: Destination,
    mut rx: mpsc::Receiver<AuditRecord>,
    mut stopped: oneshot::Receiver<()>,
    batch_size: usize,
) -> u64 {
    let mut written = 0;
    let mut batch = Vec::with_capacity(batch_size);
    // Until the stop signal (or the flusher's drop, which only detaches it).
    let mut watching_stop = true;
    loop {
        let first = if watching_stop {
            tokio::select! {
                record = rx.recv() => record,
                signal = &mut stopped => {
                    watching_stop = false;
                    if signal.is_ok() {
                        // No new records from now on; what is queued still gets written.
                        rx.close();
                    }
                    rx.recv().await
                }
            }
        } else {
            rx.recv().await
        };
        let Some(first) = first else { break };
        batch.push(first);
        // Gather for a moment rather than writing what happens to be queued:
        // under load one transaction then carries hundreds of events instead
        // of a handful, and the writer stops competing with the requests.
        // It looks at the queue every tick rather than waiting on it: a
        // receiver parked on the queue is woken by every event sent, which
        // at full rate costs the requests more than the insert does.
        let deadline = tokio::time::Instant::now() + LINGER;
        while drain(&mut rx, &mut batch, batch_size) {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep_until(deadline.min(now + TICK)).await;
        }
        written += write_with_retry(&destination, &mut batch).await;
    }
    written
}

/// Retries a failing batch (database briefly down) rather than dropping it;
/// gives up only after about a minute, loudly.
async fn write_with_retry(destination: &Destination, batch: &mut Vec<AuditRecord>) -> u64 {
    let n = batch.len() as u64;
    for attempt in 0..30 {
        match destination.write(batch).await {
            Ok(()) => return n,
            Err(err) => {
                tracing::warn!(error = %err, attempt, events = batch.len(), "audit batch failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    tracing::error!(
        events = batch.len(),
        "audit events lost: the database stayed unavailable"
    );
    crate::telemetry::audit_lost(batch.len() as u64);
    batch.clear();
    0
}

/// One multi-row `INSERT` per batch and one `last_used_at` update per key.
async fn write_batch(pool: &AnyPool, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    let per_row = row::CALL_PARAMS.len();
    let mut tx = pool.begin().await?;
    // SQLite resolves each `$n` by scanning the statement's parameter names,
    // quadratic in a multi-row insert; `?n` it reads by number.
    let mark = if pool.connect_options().database_url.scheme() == "sqlite" {
        '?'
    } else {
        '$'
    };
    // Stay far below SQLite's and PostgreSQL's bound-parameter limits.
    for chunk in batch.chunks(1000) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|n| {
                format!(
                    "({})",
                    row::call_values(|p| format!("{mark}{}", n * per_row + p))
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_events ({}) VALUES {}",
            row::COLUMNS,
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for record in chunk {
            query = record.row().bind_to(query);
        }
        query.execute(&mut *tx).await?;
    }
    for (key_id, at) in super::last_used(batch) {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
            .bind(at)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
