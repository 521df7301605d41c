//! A direct read that meets another connection's lock waits for it on
//! tokio's blocking pool, never on the thread that serves requests, and only
//! so many wait at once.

use std::{
    sync::{Arc, Mutex},
    thread::{self, ThreadId},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension};

use super::{BUSY_TIMEOUT, Readers, WAITING_READS, is_busy};

/// Each read of [`recorded_value_of`]: the thread it ran on and how long its
/// connection would have waited for a lock (ms).
static READS: Mutex<Vec<(ThreadId, i64)>> = Mutex::new(Vec::new());

fn recorded_value_of(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    let wait = conn.pragma_query_value(None, "busy_timeout", |row| row.get(0))?;
    READS
        .lock()
        .expect("reads")
        .push((thread::current().id(), wait));
    value_of(conn, name)
}

fn value_of(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()
}

/// A database in `dir` with `colour` set to `blue`: its writer connection
/// and readers of it.
fn database(dir: &tempfile::TempDir) -> (Connection, Arc<Readers>) {
    let file = dir.path().join("locked.db");
    let writer = Connection::open(&file).expect("create the database");
    // A rollback journal, not WAL: a writer's exclusive lock keeps readers out.
    writer
        .execute_batch(
            "PRAGMA journal_mode = DELETE;
             CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT);
             INSERT INTO settings VALUES ('colour', 'blue');",
        )
        .expect("schema");
    (writer, Arc::new(Readers::new(file)))
}

/// Held until `COMMIT`.
const LOCK: &str = "BEGIN EXCLUSIVE; UPDATE settings SET value = 'green' WHERE name = 'colour';";

// `tokio::test` runs the test and every task it spawns on one thread, the
// thread a read must not hold while it waits.
#[tokio::test]
async fn a_read_that_meets_a_lock_waits_off_the_request_thread() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let (writer, readers) = database(&dir);
    let unlocked = readers
        .read(recorded_value_of, "colour")
        .await
        .expect("an unlocked read");
    assert_eq!(unlocked.as_deref(), Some("blue"));

    writer.execute_batch(LOCK).expect("lock the database");
    let read = tokio::spawn({
        let readers = Arc::clone(&readers);
        async move { readers.read(recorded_value_of, "colour").await }
    });
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!read.is_finished(), "the read waits for the lock");
    writer.execute_batch("COMMIT").expect("unlock");
    let locked = read
        .await
        .expect("the read's task")
        .expect("the read once unlocked");
    assert_eq!(locked.as_deref(), Some("green"), "read after the commit");

    // This thread never waited: it read once unlocked and tried once locked,
    // each with no wait; the one read that waited ran on another thread.
    let here = thread::current().id();
    let (on_this_thread, elsewhere): (Vec<_>, Vec<_>) = READS
        .lock()
        .expect("reads")
        .iter()
        .partition(|(thread, _)| *thread == here);
    assert_eq!(
        on_this_thread,
        [(here, 0), (here, 0)],
        "reads on the request thread"
    );
    let waited = i64::try_from(BUSY_TIMEOUT.as_millis()).expect("ms");
    let waits: Vec<i64> = elsewhere.iter().map(|(_, wait)| *wait).collect();
    assert_eq!(waits, [waited], "the read that waited");

    // The connection that waited went back to the idle list without its wait.
    let idle = readers.lock();
    assert!(!idle.is_empty(), "connections are kept for reuse");
    for conn in idle.iter() {
        let wait: i64 = conn
            .pragma_query_value(None, "busy_timeout", |row| row.get(0))
            .expect("busy_timeout");
        assert_eq!(wait, 0, "an idle connection waits for no lock");
    }
}

/// Past [`WAITING_READS`] reads waiting for a lock, one more takes no thread:
/// it fails at once (a backend error, so its request is refused) and the
/// others still read once the lock goes.
#[tokio::test]
async fn a_read_past_the_waiting_ones_fails_at_once() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let (writer, readers) = database(&dir);
    writer.execute_batch(LOCK).expect("lock the database");
    let waiting: Vec<_> = (0..WAITING_READS)
        .map(|_| {
            let readers = Arc::clone(&readers);
            tokio::spawn(async move { readers.read(value_of, "colour").await })
        })
        .collect();
    // Each spawned read tries once on this thread, then waits on the pool.
    for _ in 0..10_000 {
        if readers.waiting.available_permits() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(readers.waiting.available_permits(), 0, "every permit taken");

    // One read more, while the lock is still held: it must not wait for it.
    let extra = tokio::spawn({
        let readers = Arc::clone(&readers);
        async move { readers.read(value_of, "colour").await }
    });
    for _ in 0..100 {
        if extra.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        extra.is_finished(),
        "the read past the waiting ones did not wait"
    );
    let refused = extra
        .await
        .expect("the read's task")
        .expect_err("one read too many");
    assert!(is_busy(&refused), "{refused}");

    writer.execute_batch("COMMIT").expect("unlock");
    for read in waiting {
        let value = read
            .await
            .expect("the read's task")
            .expect("a waiting read");
        assert_eq!(value.as_deref(), Some("green"));
    }
    assert_eq!(
        readers.waiting.available_permits(),
        WAITING_READS,
        "every permit back"
    );
}
