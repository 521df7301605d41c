//! The SQLite writer: one connection on its own OS thread, one transaction
//! per batch, cached prepared statements that insert up to 32 rows at a
//! time. No sqlx worker hop per statement, no SQL text built per batch.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{LazyLock, mpsc as std_mpsc},
    thread,
};

use rusqlite::{Connection, Statement, params};
use tokio::sync::oneshot;

use super::{AuditRecord, row};
use crate::backend::sqlite;

/// Values bound per row (see [`row::CALL_PARAMS`]).
const PARAMS_PER_ROW: usize = row::CALL_PARAMS.len();

/// Rows per execution of the multi-row `INSERT`s, largest first. Each
/// execution opens its cursors on the table and on both indexes and reads
/// and writes the AUTOINCREMENT counter, so one execution per row cost
/// SQLite nearly twice the instructions per row of one per 32 (BENCHMARKS.md,
/// "Instructions per request"); past 32 rows the gain is a few percent. A
/// batch goes in as executions of the largest statement that fits, so the
/// rows past the last 32 take at most five more (25 rows: 16 + 8 + 1): at a
/// light load a whole batch is such a remainder.
const STATEMENT_ROWS: [usize; 6] = [32, 16, 8, 4, 2, 1];

static INSERTS: LazyLock<[String; 6]> = LazyLock::new(|| STATEMENT_ROWS.map(insert_sql));

/// An `INSERT` of `rows` audit rows; row `n`'s parameters are numbered from
/// `n * PARAMS_PER_ROW + 1` (see [`bind_row`]).
///
/// `OR FAIL`, not the default `ABORT`: an `ABORT` undoes the rows the
/// statement already wrote when a later one breaks a constraint, so SQLite
/// copies every page the statement touches into a statement journal first.
/// Here a failed statement fails its batch's whole transaction anyway (it
/// is rolled back and retried, see [`write`]), so there is nothing to undo
/// row by row.
fn insert_sql(rows: usize) -> String {
    let mut sql = format!(
        "INSERT OR FAIL INTO audit_events ({}) VALUES ",
        row::COLUMNS
    );
    for n in 0..rows {
        let first = n * PARAMS_PER_ROW;
        let separator = if n == 0 { "" } else { ", " };
        let values = row::call_values(|param| format!("?{}", first + param));
        let _ = write!(sql, "{separator}({values})");
    }
    sql
}

/// Binds `record` as row `n` of an [`insert_sql`] statement.
fn bind_row(insert: &mut Statement<'_>, n: usize, record: &AuditRecord) -> rusqlite::Result<()> {
    let p = n * PARAMS_PER_ROW;
    let row = record.row();
    insert.raw_bind_parameter(p + 1, row.tenant_id)?;
    insert.raw_bind_parameter(p + 2, row.key_id)?;
    insert.raw_bind_parameter(p + 3, row.service_user_id)?;
    insert.raw_bind_parameter(p + 4, row.tool)?;
    insert.raw_bind_parameter(p + 5, row.outcome)?;
    insert.raw_bind_parameter(p + 6, row.reason)?;
    insert.raw_bind_parameter(p + 7, row.request_id)?;
    insert.raw_bind_parameter(p + 8, row.at)?;
    insert.raw_bind_parameter(p + 9, row.status)?;
    insert.raw_bind_parameter(p + 10, row.duration_us)?;
    insert.raw_bind_parameter(p + 11, row.grant_id)?;
    insert.raw_bind_parameter(p + 12, row.client_id)
}

const TOUCH: &str = "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)";

/// Lowers the calling (audit) thread's priority to nice 10; on Linux the
/// nice value is per thread, so the request threads keep theirs. When the
/// writer and the requests want the same cores, the requests go first: a
/// batch written a few milliseconds later costs nothing, a request held
/// behind it shows in the p99 (BENCHMARKS.md, fixed rate). The writer still
/// gets the cores whenever the requests leave them idle, and under
/// sustained overload the full queue holds requests back until it catches
/// up. Best effort: a system that refuses only loses the latency benefit.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    if let Err(err) = rustix::process::setpriority_process(None, 10) {
        tracing::debug!(error = %err, "audit thread keeps its priority");
    }
}

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
                yield_to_requests();
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

/// The writer's connection. It does not check `audit_events.tenant_id`
/// against `tenants`: every row's tenant is the tenant of a key the layer
/// just verified, and tenants are never deleted, so the lookup (an index
/// seek per row, and the statement journal an immediate foreign key
/// forces on a multi-row `INSERT`) could not fail. Every other connection
/// keeps enforcing the key.
fn open_for_audit(file: &Path) -> rusqlite::Result<Connection> {
    let conn = sqlite::open(file, sqlite::BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(conn)
}

// Out of line: the audit stage a profile names (scripts/bench-instructions);
// inlined, the writer thread's cost fell outside every stage.
#[inline(never)]
fn write(
    conn: &mut Option<Connection>,
    file: &Path,
    batch: &[AuditRecord],
) -> rusqlite::Result<()> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(open_for_audit(file)?),
    };
    let tx = conn.transaction()?;
    {
        let mut rest = batch;
        for (&rows, sql) in STATEMENT_ROWS.iter().zip(INSERTS.iter()) {
            if rest.len() < rows {
                continue;
            }
            let mut insert = tx.prepare_cached(sql)?;
            let mut chunks = rest.chunks_exact(rows);
            for chunk in &mut chunks {
                for (row, record) in chunk.iter().enumerate() {
                    bind_row(&mut insert, row, record)?;
                }
                insert.raw_execute()?;
            }
            rest = chunks.remainder();
        }
        let mut touch = tx.prepare_cached(TOUCH)?;
        for (key_id, at) in super::last_used(batch) {
            touch.execute(params![at, key_id])?;
        }
    }
    tx.commit()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The nice value in a `/proc/.../stat` line (field 19; the fields
    /// after the parenthesised name start at field 3).
    fn nice_in_stat(stat: &str) -> i32 {
        let after_name = &stat[stat.rfind(')').expect("a stat line names its thread") + 2..];
        after_name
            .split(' ')
            .nth(16)
            .and_then(|field| field.parse().ok())
            .expect("a stat line has a nice value")
    }

    /// Nice values of this process's threads named `name`.
    fn nice_of_threads(name: &str) -> Vec<i32> {
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").expect("procfs lists threads") {
            let task = task.expect("a thread entry").path();
            let (Ok(comm), Ok(stat)) = (
                std::fs::read_to_string(task.join("comm")),
                std::fs::read_to_string(task.join("stat")),
            ) else {
                continue; // the thread ended meanwhile
            };
            if comm.trim_end() == name {
                nice.push(nice_in_stat(&stat));
            }
        }
        nice
    }

    fn own_nice() -> i32 {
        nice_in_stat(
            &std::fs::read_to_string("/proc/thread-self/stat").expect("procfs has this thread"),
        )
    }

    #[tokio::test]
    async fn the_audit_thread_runs_below_the_request_threads() {
        let caller = own_nice();
        let writer =
            SqliteWriter::spawn("/nonexistent/audit.db".into()).expect("the thread starts");
        // The first batch is taken once the thread has set its priority
        // (the write itself fails: there is no such file).
        assert!(writer.write(&mut Vec::new()).await.is_err());
        // procfs lists a process's threads by position, so a listing taken
        // while other tests' threads come and go can skip one (seen in CI):
        // look again until the thread shows.
        let mut audit_threads = nice_of_threads("keysmith-audit");
        for _ in 0..100 {
            if !audit_threads.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            audit_threads = nice_of_threads("keysmith-audit");
        }
        assert!(!audit_threads.is_empty(), "no audit thread found");
        // 10, or more where the whole process already ran nicer than that.
        assert!(
            audit_threads.iter().all(|&nice| nice >= 10),
            "{audit_threads:?}"
        );
        assert_eq!(own_nice(), caller, "the caller's priority must not change");
    }
}

#[cfg(test)]
mod rows_tests;
