//! Where each rollup table ends, and so which table a reader counts each
//! stretch of time from. Days, hours and minutes are each rolled up oldest
//! first, so everything before a table's frontier is in it.

use sqlx::AnyPool;

use super::{DAY, HOUR, MINUTE};
use crate::domain::error::DomainResult;

/// The start of the first day, hour and minute not rolled up yet; `None`
/// where nothing was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frontiers {
    pub days: Option<i64>,
    pub hours: Option<i64>,
    pub minutes: Option<i64>,
}

/// The stretches `[from, until)` a reader counts from each table, from a
/// UTC midnight on; raw rows from `raw_from` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub days: (i64, i64),
    pub hours: (i64, i64),
    pub minutes: (i64, i64),
    pub raw_from: i64,
}

impl Frontiers {
    /// All three in one statement: one snapshot, so that no rollup written
    /// between two reads makes a stretch counted twice or not at all.
    pub async fn read(pool: &AnyPool) -> DomainResult<Self> {
        let (days, hours, minutes): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT MAX(day) FROM audit_rollup_days), \
             (SELECT MAX(hour) FROM audit_rollup_hours), \
             (SELECT MAX(minute) FROM audit_rollup_minutes)",
        )
        .fetch_one(pool)
        .await?;
        Ok(Self {
            days: days.map(|day| day + DAY),
            hours: hours.map(|hour| hour + HOUR),
            minutes: minutes.map(|minute| minute + MINUTE),
        })
    }

    /// Each stretch starts where the one before ends: a table whose
    /// frontier lags behind an older table's is skipped.
    pub fn split(&self, since: i64) -> Split {
        let days_until = self.days.map_or(since, |day| day.max(since));
        let hours_until = self.hours.map_or(days_until, |hour| hour.max(days_until));
        let raw_from = self.minutes.map_or(hours_until, |m| m.max(hours_until));
        Split {
            days: (since, days_until),
            hours: (days_until, hours_until),
            minutes: (hours_until, raw_from),
            raw_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stretch_starts_where_the_one_before_ends() {
        let since = 10 * DAY;
        let frontiers = Frontiers {
            days: Some(12 * DAY),
            hours: Some(12 * DAY + 5 * HOUR),
            minutes: Some(12 * DAY + 5 * HOUR + 7 * MINUTE),
        };
        assert_eq!(
            frontiers.split(since),
            Split {
                days: (since, 12 * DAY),
                hours: (12 * DAY, 12 * DAY + 5 * HOUR),
                minutes: (12 * DAY + 5 * HOUR, 12 * DAY + 5 * HOUR + 7 * MINUTE),
                raw_from: 12 * DAY + 5 * HOUR + 7 * MINUTE,
            }
        );
    }

    #[test]
    fn a_lagging_or_missing_frontier_leaves_its_stretch_empty() {
        let since = 10 * DAY;
        let lagging = Frontiers {
            days: Some(12 * DAY),
            hours: Some(11 * DAY),
            minutes: None,
        };
        let split = lagging.split(since);
        assert_eq!(split.hours, (12 * DAY, 12 * DAY));
        assert_eq!(split.minutes, (12 * DAY, 12 * DAY));
        assert_eq!(split.raw_from, 12 * DAY);
        let nothing = Frontiers::default().split(since);
        assert_eq!((nothing.days, nothing.raw_from), ((since, since), since));
        // A window starting after every frontier reads raw from its start.
        let old = Frontiers {
            days: Some(DAY),
            hours: Some(2 * DAY),
            minutes: Some(3 * DAY),
        };
        assert_eq!(old.split(since).raw_from, since);
    }
}
