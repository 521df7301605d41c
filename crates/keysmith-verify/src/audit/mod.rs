//! Per-request audit, off the request path: a bounded queue drained in
//! batches (one transaction each) into `audit_events`, with `last_used_at`.
//! The row's columns are defined once, in [`row`].
//!
//! When the queue is full, requests wait for room (backpressure) instead of
//! dropping events. [`AuditFlusher::shutdown`] drains what is queued.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

/// One verified or refused request.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The ids are shared with the cached key (a reference count per request,
    /// not a copy).
    pub tenant_id: Arc<str>,
    pub key_id: Arc<str>,
    pub service_user_id: Arc<str>,
    /// Set when the call was made with an OAuth access token: the grant it
    /// was issued under (authorization code only) and the client it was
    /// issued to. Shared with the cached verdict too.
    pub grant_id: Option<Arc<str>>,
    pub client_id: Option<Arc<str>>,
    /// The MCP tool, or `METHOD /path` for other requests.
    pub tool: String,
    pub allowed: bool,
    /// The verification code (`valid`, `tool_not_allowed`, `revoked`…).
    pub reason: &'static str,
    pub request_id: Option<String>,
    pub at: OffsetDateTime,
    /// The HTTP status answered: the upstream's, or the layer's refusal.
    /// `None` when the upstream failed before answering.
    pub status: Option<u16>,
    /// Microseconds from the request's arrival to the answer's headers.
    pub duration_us: Option<u64>,
}

/// Where the layer sends audit records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
    depth: crate::telemetry::QueueDepth,
}

impl AuditSink {
    pub(crate) fn new(tx: mpsc::Sender<AuditRecord>) -> Self {
        Self {
            tx,
            depth: Default::default(),
        }
    }

    /// Queues a record, waiting for room when the writer is behind.
    pub async fn record(&self, record: AuditRecord) {
        if self.tx.send(record).await.is_err() {
            tracing::error!("audit record after shutdown: not written");
            crate::telemetry::audit_lost(1);
        }
        self.depth.set(self.tx.max_capacity() - self.tx.capacity());
    }

    /// Queues a record if there is room now; gives it back when the writer
    /// is behind (the caller then waits with [`AuditSink::record`]).
    #[expect(
        clippy::result_large_err,
        reason = "the record is handed back by value: a box would cost the allocation the fast path saves"
    )]
    pub(crate) fn try_record(&self, record: AuditRecord) -> Result<(), AuditRecord> {
        match self.tx.try_send(record) {
            Ok(()) => {
                self.depth.set(self.tx.max_capacity() - self.tx.capacity());
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(record)) => Err(record),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("audit record after shutdown: not written");
                crate::telemetry::audit_lost(1);
                Ok(())
            }
        }
    }

    /// Queues a record from where nothing can wait (a drop): at once when
    /// there is room, else from a task that waits for it.
    pub fn record_detached(&self, record: AuditRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                let sink = self.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { sink.record(record).await });
                } else {
                    tracing::error!("audit record dropped outside a runtime: not written");
                    crate::telemetry::audit_lost(1);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("audit record after shutdown: not written");
                crate::telemetry::audit_lost(1);
            }
        }
    }
}

/// Stops the writer after draining the queue.
#[derive(Debug)]
pub struct AuditFlusher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<u64>,
}

impl AuditFlusher {
    /// Drains the queue and returns how many events the writer wrote in all.
    pub async fn shutdown(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}

/// The latest allowed call per key in `batch` (Unix seconds), for `last_used_at`.
#[cfg(feature = "sql")]
fn last_used(batch: &[AuditRecord]) -> std::collections::HashMap<&str, i64> {
    let mut latest = std::collections::HashMap::new();
    for r in batch.iter().filter(|r| r.allowed) {
        let at = latest.entry(&*r.key_id).or_insert(i64::MIN);
        *at = (*at).max(crate::timestamp::to_unix(r.at));
    }
    latest
}

#[cfg(feature = "remote")]
mod remote;
pub mod row;
#[cfg(feature = "remote")]
mod spool;
pub mod wire;

#[cfg(feature = "remote")]
pub use remote::{RemoteAuditOptions, spawn_remote_audit};

#[cfg(feature = "sql")]
mod postgres;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "sql")]
mod sqlite;
#[cfg(feature = "sql")]
pub use sql::spawn_sql_audit;
