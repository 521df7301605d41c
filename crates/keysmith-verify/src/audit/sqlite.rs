//! The SQLite writer: one connection on its own OS thread, one transaction
//! per batch, one cached prepared statement executed per row. No sqlx worker
//! hop per statement, no SQL text built per batch.

use std::{
    path::{Path, PathBuf},
    sync::mpsc as std_mpsc,
    thread,
};

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::AuditRecord;
use crate::{sqlite, timestamp};

const INSERT: &str = "INSERT INTO audit_events (tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, request_id, at, status, duration_us) \
     VALUES (?1, ?2, ?3, 'key:' || ?2, 'tool.call', ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const TOUCH: &str = "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)";

/// A batch handed to the thread, and where the thread hands it back (emptied
/// on success, as it was on failure so it can be retried).
type Job = (Vec<AuditRecord>, oneshot::Sender<Done>);
type Done = (Vec<AuditRecord>, rusqlite::Result<()>);

/// The thread's end of the writer; the thread stops when this is dropped.
#[derive(Debug)]
pub(super) struct SqliteWriter {
    jobs: std_mpsc::Sender<Job>,
}

impl SqliteWriter {
    pub(super) fn spawn(file: PathBuf) -> std::io::Result<Self> {
        let (jobs, queue) = std_mpsc::channel::<Job>();
        thread::Builder::new()
            .name("keysmith-audit".into())
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                for (mut batch, reply) in queue {
                    let result = write(&mut conn, &file, &batch);
                    if result.is_ok() {
                        batch.clear();
                    } else {
                        // Reopen next time: the connection may be what failed.
                        conn = None;
                    }
                    let _ = reply.send((batch, result));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Writes `batch` (emptied on success, kept for a retry on failure).
    pub(super) async fn write(&self, batch: &mut Vec<AuditRecord>) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.jobs
            .send((std::mem::take(batch), reply))
            .map_err(|_| "the audit thread stopped".to_owned())?;
        let (returned, result) = done
            .await
            .map_err(|_| "the audit thread stopped".to_owned())?;
        *batch = returned;
        result.map_err(|err| err.to_string())
    }
}

fn write(
    conn: &mut Option<Connection>,
    file: &Path,
    batch: &[AuditRecord],
) -> rusqlite::Result<()> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(sqlite::open(file)?),
    };
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for r in batch {
            insert.execute(params![
                &*r.tenant_id,
                &*r.key_id,
                &*r.service_user_id,
                r.tool,
                super::outcome(r.allowed),
                r.reason,
                r.request_id,
                timestamp::to_unix(r.at),
                r.status,
                r.duration_us.map(super::clamp_us),
            ])?;
        }
        let mut touch = tx.prepare_cached(TOUCH)?;
        for (key_id, at) in super::last_used(batch) {
            touch.execute(params![at, key_id])?;
        }
    }
    tx.commit()
}
