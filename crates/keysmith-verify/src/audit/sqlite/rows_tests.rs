//! Every record of a batch lands as its own row, field for field, whichever
//! statement carried it: the multi-row `INSERT` for whole chunks, the
//! one-row `INSERT` for the rest.

use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;

/// The writer's columns as the migrations define them (constraints aside).
const SCHEMA: &str = "
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, key_id TEXT,
        service_user_id TEXT, actor TEXT NOT NULL, action TEXT NOT NULL, tool TEXT,
        outcome TEXT NOT NULL, reason TEXT, request_id TEXT, at INTEGER NOT NULL,
        status INTEGER, duration_us BIGINT, grant_id TEXT, client_id TEXT);
    CREATE INDEX audit_events_key_at ON audit_events (key_id, at);
    CREATE TABLE api_keys (id TEXT PRIMARY KEY, last_used_at INTEGER);";

/// A fresh database file, removed (with its WAL) when dropped.
struct ScratchDb(PathBuf);

impl ScratchDb {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "keysmith-audit-rows-{}-{}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let conn = Connection::open(&path).expect("create the scratch database");
        conn.execute_batch(SCHEMA).expect("schema");
        Self(path)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// A row as read back, in the writer's column order after `id` (the
/// token's grant and client apart: a tuple compares up to 12 fields).
type Row = (Base, (Option<String>, Option<String>));
type Base = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<u16>,
    Option<i64>,
);

fn expected(r: &AuditRecord) -> Row {
    let token = (
        r.grant_id.as_deref().map(str::to_owned),
        r.client_id.as_deref().map(str::to_owned),
    );
    let base = (
        r.tenant_id.to_string(),
        r.key_id.to_string(),
        r.service_user_id.to_string(),
        format!("key:{}", r.key_id),
        "tool.call".to_owned(),
        r.tool.clone(),
        if r.allowed { "allowed" } else { "denied" }.to_owned(),
        r.reason.to_owned(),
        r.request_id.clone(),
        r.at.unix_timestamp(),
        r.status,
        r.duration_us
            .map(|us| i64::try_from(us).unwrap_or(i64::MAX)),
    );
    (base, token)
}

fn rows(file: &Path) -> Vec<Row> {
    let conn = Connection::open(file).expect("open");
    let mut select = conn
        .prepare(
            "SELECT tenant_id, key_id, service_user_id, actor, action, tool, outcome, reason, \
             request_id, at, status, duration_us, grant_id, client_id FROM audit_events ORDER BY id",
        )
        .expect("prepare");
    select
        .query_map([], |row| {
            let base = (
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                row.get(8)?,
                row.get(9)?,
                row.get(10)?,
                row.get(11)?,
            );
            Ok((base, (row.get(12)?, row.get(13)?)))
        })
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

fn record() -> impl Strategy<Value = AuditRecord> {
    (
        (0..3u8, 0..5u8, any::<String>(), any::<bool>()),
        proptest::option::of(("[a-z0-9]{1,16}", proptest::option::of("[a-z0-9]{1,16}"))),
        prop_oneof![Just("valid"), Just("tool_not_allowed"), Just("revoked")],
        proptest::option::of("[a-z0-9-]{1,40}"),
        0..4_102_444_800i64,
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |((tenant, key, tool, allowed), token, reason, request_id, at, status, duration_us)| {
                // A token's call names its client, and its grant if it has one.
                let (client_id, grant_id) = token.map_or((None, None), |(c, g)| (Some(c), g));
                AuditRecord {
                    tenant_id: format!("tenant-{tenant}").into(),
                    key_id: format!("key-{tenant}-{key}").into(),
                    service_user_id: format!("user-{tenant}").into(),
                    grant_id: grant_id.map(Into::into),
                    client_id: client_id.map(Into::into),
                    tool,
                    allowed,
                    reason,
                    request_id,
                    at: OffsetDateTime::from_unix_timestamp(at).expect("in range"),
                    status,
                    duration_us,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Batches around the chunk size (none, some, exact multiples, a
    /// remainder), written one after another into the same file.
    #[test]
    fn every_record_becomes_its_own_row(
        batches in proptest::collection::vec(
            proptest::collection::vec(record(), 0..=3 * STATEMENT_ROWS[0] + 1),
            1..4,
        )
    ) {
        let db = ScratchDb::new();
        let mut conn = None;
        for batch in &batches {
            write(&mut conn, &db.0, batch).expect("write");
        }
        let written = rows(&db.0);
        let wanted: Vec<Row> = batches.iter().flatten().map(expected).collect();
        prop_assert_eq!(written, wanted);
    }
}

/// A plain record, told apart from others by its tool.
fn numbered(tool: String) -> AuditRecord {
    AuditRecord {
        tenant_id: "tenant".into(),
        key_id: "key".into(),
        service_user_id: "user".into(),
        grant_id: None,
        client_id: None,
        tool,
        allowed: true,
        reason: "valid",
        request_id: None,
        at: OffsetDateTime::UNIX_EPOCH,
        status: Some(200),
        duration_us: Some(1),
    }
}

/// Every batch length up to three of the largest statements, so every mix
/// of statement sizes is used at least once.
#[test]
fn a_batch_of_every_length_goes_in_whole_and_in_order() {
    let db = ScratchDb::new();
    let mut conn = None;
    let mut wanted = Vec::new();
    for len in 0..=3 * STATEMENT_ROWS[0] {
        let batch: Vec<AuditRecord> = (0..len).map(|n| numbered(format!("{len}-{n}"))).collect();
        write(&mut conn, &db.0, &batch).expect("write");
        wanted.extend(batch.iter().map(expected));
    }
    assert_eq!(rows(&db.0), wanted);
}

#[test]
fn a_batch_refused_at_its_last_row_leaves_no_row() {
    let db = ScratchDb::new();
    let conn = Connection::open(&db.0).expect("open");
    // Refuse the batch's last row only, after two whole chunks went in.
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON audit_events WHEN NEW.tool = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .expect("trigger");
    let mut batch: Vec<AuditRecord> = (0..2 * STATEMENT_ROWS[0] + 1)
        .map(|n| numbered(format!("tool-{n}")))
        .collect();
    batch.last_mut().expect("a last row").tool = "refused".into();
    let mut writer_conn = None;
    let error = write(&mut writer_conn, &db.0, &batch).expect_err("the trigger refuses");
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(rows(&db.0).is_empty(), "the batch is one transaction");
}

/// A constraint broken in the middle of a multi-row statement (`OR FAIL`
/// keeps the rows it wrote before that one): the batch's transaction is
/// rolled back all the same, and the same batch goes in whole once the
/// obstacle is gone.
#[test]
fn a_batch_refused_in_the_middle_of_a_statement_leaves_no_row_and_goes_in_on_retry() {
    let db = ScratchDb::new();
    let conn = Connection::open(&db.0).expect("open");
    conn.execute_batch("CREATE UNIQUE INDEX refuse ON audit_events (tool)")
        .expect("index");
    let mut batch: Vec<AuditRecord> = (0..2 * STATEMENT_ROWS[0] + 1)
        .map(|n| numbered(format!("tool-{n}")))
        .collect();
    // Rows 40 and 41: both in the second 32-row statement.
    batch[STATEMENT_ROWS[0] + 9].tool = batch[STATEMENT_ROWS[0] + 8].tool.clone();
    let mut writer_conn = None;
    let error = write(&mut writer_conn, &db.0, &batch).expect_err("the index refuses");
    assert!(error.to_string().contains("UNIQUE"), "{error}");
    assert!(rows(&db.0).is_empty(), "the batch is one transaction");

    conn.execute_batch("DROP INDEX refuse").expect("drop");
    write(&mut writer_conn, &db.0, &batch).expect("the retry");
    assert_eq!(rows(&db.0), batch.iter().map(expected).collect::<Vec<_>>());
}
