//! Minute rollups of the hours not rolled up yet, so that readers count raw
//! only the last minute or two, however many calls a key makes per hour.
//!
//! They are a reader's shortcut, not a record: a minute is rolled up
//! [`GRACE_SECS`] after it ends, and a call written later than that (its
//! audit batch retried while the database was away) is missing from its
//! minute until its hour is rolled up from the raw rows, with the hour's
//! longer grace. Minutes are dropped once the hourly rollups are an hour
//! past them.

use sqlx::AnyPool;
use time::OffsetDateTime;

use super::{Frontiers, HOUR, MINUTES, roll_up_periods};
use crate::{domain::UnixTime, domain::error::DomainResult};

pub const MINUTE: i64 = 60;
/// The audit writer flushes a batch within milliseconds of the calls, and
/// waits at most a few seconds behind a slow commit.
const GRACE_SECS: i64 = 30;
/// Minutes rolled up per tick, for after an outage: two hours' worth.
const MINUTES_PER_TICK: usize = 120;

/// Rolls up the complete minutes with tool calls after every older rollup
/// (days, hours, minutes), oldest first, at most [`MINUTES_PER_TICK`].
/// Writing a minute twice writes what its raw rows say, so instances running
/// this at once need no claim.
#[tracing::instrument(skip(pool))]
pub async fn roll_up_minutes(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<usize> {
    let complete_before = (UnixTime::from(now).secs() - GRACE_SECS).div_euclid(MINUTE) * MINUTE;
    let frontiers = Frontiers::read(pool).await?;
    let older = frontiers.days.max(frontiers.hours);
    if let Some(older) = older {
        // A reader that looked at the frontiers up to an hour before this
        // delete still finds the minutes it counts on.
        sqlx::query("DELETE FROM audit_rollup_minutes WHERE minute < $1")
            .bind(older - HOUR)
            .execute(pool)
            .await?;
    }
    // Readers count minutes from where the older rollups end: the minutes
    // start there too, and go on without a gap.
    let from = frontiers.minutes.max(older).unwrap_or(i64::MIN);
    roll_up_periods(pool, &MINUTES, (from, complete_before), MINUTES_PER_TICK).await
}
