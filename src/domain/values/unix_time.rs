//! `UnixTime`: a moment as whole Unix seconds (UTC), the one representation
//! both SQLite and PostgreSQL store identically through `sqlx::Any`. The
//! conversions to and from `time::OffsetDateTime`, RFC 3339 text and the
//! arithmetic live here, so modules pass moments, not bare seconds.

use std::ops::{Add, Sub};

use serde::{Serialize, Serializer};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

/// Stored as an `i64` column; read and bound directly by sqlx (transparent).
/// Serialized as RFC 3339 (`2026-05-01T12:00:00Z`), the API's time format.
/// No `Display`: a format string says which form it wants (`rfc3339()`,
/// `date()` or `secs()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct UnixTime(i64);

impl UnixTime {
    pub const fn from_secs(seconds: i64) -> Self {
        Self(seconds)
    }

    pub const fn secs(self) -> i64 {
        self.0
    }

    /// Out-of-range values (only possible from a corrupted row) clamp to the
    /// epoch, which reads as "long expired": failing closed.
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `2026-05-01T12:00:00Z`.
    pub fn rfc3339(self) -> String {
        self.to_datetime().format(&Rfc3339).unwrap_or_default()
    }

    /// `2026-05-01`: the day, for pages and form defaults.
    pub fn date(self) -> String {
        let d = self.to_datetime().date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

impl From<OffsetDateTime> for UnixTime {
    fn from(at: OffsetDateTime) -> Self {
        Self(at.unix_timestamp())
    }
}

impl From<UnixTime> for OffsetDateTime {
    fn from(at: UnixTime) -> Self {
        at.to_datetime()
    }
}

impl Serialize for UnixTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl Add<Duration> for UnixTime {
    type Output = Self;

    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.whole_seconds()))
    }
}

impl Sub<Duration> for UnixTime {
    type Output = Self;

    fn sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.whole_seconds()))
    }
}

/// How long from `other` to `self` (negative when `self` is earlier).
impl Sub for UnixTime {
    type Output = Duration;

    fn sub(self, other: Self) -> Duration {
        Duration::seconds(self.0.saturating_sub(other.0))
    }
}

/// Seconds in stored JSON (the outbox's notices), as rows written before
/// this type have them: `#[serde(with = "unix_time::as_secs")]`.
pub mod as_secs {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::UnixTime;

    pub fn serialize<S: Serializer>(at: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(at.secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixTime, D::Error> {
        i64::deserialize(d).map(UnixTime::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn converts_both_ways_and_formats_rfc3339() {
        let at = datetime!(2026-05-01 12:00:00 UTC);
        let unix = UnixTime::from(at);
        assert_eq!(unix.secs(), 1_777_636_800);
        assert_eq!(OffsetDateTime::from(unix), at);
        assert_eq!(unix.rfc3339(), "2026-05-01T12:00:00Z");
        assert_eq!(unix.date(), "2026-05-01");
        assert_eq!(
            serde_json::to_value(unix).ok(),
            Some("2026-05-01T12:00:00Z".into())
        );
    }

    #[test]
    fn arithmetic_is_in_seconds() {
        let at = UnixTime::from_secs(1_000);
        assert_eq!((at + Duration::days(1)).secs(), 87_400);
        assert_eq!((at - Duration::seconds(1_001)).secs(), -1);
        assert_eq!(UnixTime::from_secs(4_600) - at, Duration::hours(1));
        assert_eq!(at - UnixTime::from_secs(4_600), Duration::hours(-1));
    }

    #[test]
    fn a_corrupt_value_reads_as_long_expired() {
        assert_eq!(
            UnixTime::from_secs(i64::MAX).to_datetime(),
            OffsetDateTime::UNIX_EPOCH
        );
    }
}
