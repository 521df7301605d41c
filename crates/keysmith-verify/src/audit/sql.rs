//! The SQL writer: batches from the queue into `audit_events`.

use std::{collections::HashMap, time::Duration};

use sqlx::AnyPool;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::{AuditFlusher, AuditRecord, AuditSink};
use crate::timestamp;

/// How long the writer waits for a batch to fill before writing it: the most
/// an event waits for its row when traffic is light.
const LINGER: Duration = Duration::from_millis(20);

/// Starts the writer: batches of up to `batch_size`, queue of `capacity`.
pub fn spawn_sql_audit(
    pool: AnyPool,
    batch_size: usize,
    capacity: usize,
) -> (AuditSink, AuditFlusher) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(write_loop(pool, rx, stopped, batch_size.max(1)));
    (AuditSink { tx }, AuditFlusher { stop, task })
}

async fn write_loop(
    pool: AnyPool,
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
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(record)) => batch.push(record),
                        // Closed, or the moment is over.
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        written += write_with_retry(&pool, &mut batch).await;
    }
    written
}

/// Retries a failing batch (database briefly down) rather than dropping it;
/// gives up only after about a minute, loudly.
async fn write_with_retry(pool: &AnyPool, batch: &mut Vec<AuditRecord>) -> u64 {
    for attempt in 0..30 {
        match write_batch(pool, batch).await {
            Ok(()) => {
                let n = batch.len() as u64;
                batch.clear();
                return n;
            }
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

/// One multi-row `INSERT` per batch and one `last_used_at` update per key:
/// the writer keeps up with thousands of requests a second on SQLite.
async fn write_batch(pool: &AnyPool, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 11;
    let mut tx = pool.begin().await?;
    // SQLite resolves each `$n` by scanning the statement's parameter names,
    // quadratic in a multi-row insert; plain `?` binds by position.
    let positional = pool.connect_options().database_url.scheme() == "sqlite";
    // Stay far below SQLite's and PostgreSQL's bound-parameter limits.
    for chunk in batch.chunks(1000) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|row| {
                let p: Vec<String> = (1..=COLUMNS)
                    .map(|c| {
                        if positional {
                            "?".to_owned()
                        } else {
                            format!("${}", row * COLUMNS + c)
                        }
                    })
                    .collect();
                format!(
                    "({}, {}, {}, {}, 'tool.call', {}, {}, {}, {}, {}, {}, {})",
                    p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at, status, duration_us) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(&r.tenant_id)
                .bind(&r.key_id)
                .bind(&r.service_user_id)
                .bind(format!("key:{}", r.key_id))
                .bind(&r.tool)
                .bind(if r.allowed { "allowed" } else { "denied" })
                .bind(r.reason)
                .bind(r.request_id.as_deref())
                .bind(timestamp::to_unix(r.at))
                .bind(r.status.map(i64::from))
                .bind(
                    r.duration_us
                        .map(|us| i64::try_from(us).unwrap_or(i64::MAX)),
                );
        }
        query.execute(&mut *tx).await?;
    }
    let mut last_used: HashMap<&str, OffsetDateTime> = HashMap::new();
    for r in batch.iter().filter(|r| r.allowed) {
        let at = last_used.entry(&r.key_id).or_insert(r.at);
        *at = (*at).max(r.at);
    }
    for (key_id, at) in last_used {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
            .bind(timestamp::to_unix(at))
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
