//! A direct read that meets another connection's lock waits for it on
//! tokio's blocking pool, never on the thread that serves requests.

use std::{
    sync::{Arc, Mutex},
    thread::{self, ThreadId},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension};

use super::{BUSY_TIMEOUT, Readers};

/// Each read of [`value_of`]: the thread it ran on and how long its
/// connection would have waited for a lock (ms).
static READS: Mutex<Vec<(ThreadId, i64)>> = Mutex::new(Vec::new());

fn value_of(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    let wait = conn.pragma_query_value(None, "busy_timeout", |row| row.get(0))?;
    READS
        .lock()
        .expect("reads")
        .push((thread::current().id(), wait));
    conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()
}

// `tokio::test` runs the test and every task it spawns on one thread, the
// thread a read must not hold while it waits.
#[tokio::test]
async fn a_read_that_meets_a_lock_waits_off_the_request_thread() {
    let dir = tempfile::tempdir().expect("a scratch directory");
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
    let readers = Arc::new(Readers::new(file));
    let unlocked = readers
        .read(value_of, "colour")
        .await
        .expect("an unlocked read");
    assert_eq!(unlocked.as_deref(), Some("blue"));

    writer
        .execute_batch(
            "BEGIN EXCLUSIVE; UPDATE settings SET value = 'green' WHERE name = 'colour';",
        )
        .expect("lock the database");
    let read = tokio::spawn({
        let readers = Arc::clone(&readers);
        async move { readers.read(value_of, "colour").await }
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
