//! Stored timestamps are whole Unix seconds (UTC), the one representation both
//! SQLite and PostgreSQL handle identically through `sqlx::Any`. Private:
//! the server has its own `UnixTime`; this crate only reads and writes rows.

use time::OffsetDateTime;

/// Every writer's form of a time, the remote one's wire events included.
pub fn to_unix(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

/// Out-of-range values (only possible from a corrupted row) clamp to the
/// epoch, which reads as "long expired": failing closed.
pub fn from_unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
