//! The arithmetic of the limits, free of storage so it can be tested with
//! any clock and shared by every limiter.

use time::{Date, Month, OffsetDateTime, Time};

use super::QuotaPeriod;

const MINUTE_NS: i128 = 60_000_000_000;
const SECOND_NS: i128 = 1_000_000_000;

/// The generic cell rate algorithm for `per_minute` calls a minute, all of
/// them allowed in a burst. State is one instant: the theoretical arrival
/// time (TAT), in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time between two calls at the steady rate.
    interval_ns: i128,
}

impl Gcra {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            interval_ns: MINUTE_NS / i128::from(per_minute.max(1)),
        }
    }

    /// One call at `now` against the stored TAT: `Ok(new TAT)` to store, or
    /// `Err(nanoseconds until it would be allowed)`.
    pub fn admit(&self, tat: Option<i128>, now: i128) -> Result<i128, i128> {
        let tat = tat.unwrap_or(now).max(now);
        let new_tat = tat + self.interval_ns;
        // A full minute of burst: allowed while the new TAT is at most a minute ahead.
        let allow_at = new_tat - MINUTE_NS;
        if allow_at > now {
            Err(allow_at - now)
        } else {
            Ok(new_tat)
        }
    }
}

/// Whole seconds, rounded up, at least one: what `Retry-After` says.
pub fn retry_after_secs(wait_ns: i128) -> u64 {
    let secs = (wait_ns + SECOND_NS - 1) / SECOND_NS;
    u64::try_from(secs.max(1)).unwrap_or(u64::MAX)
}

pub fn unix_ns(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos()
}

/// The calendar window (UTC) a quota counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaWindow {
    pub period: QuotaPeriod,
    /// The window's first instant.
    pub start: OffsetDateTime,
    /// The next window's first instant.
    pub end: OffsetDateTime,
}

impl QuotaWindow {
    pub fn containing(period: QuotaPeriod, at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let day = at.date();
        let (start, end) = match period {
            QuotaPeriod::Day => (day, day.next_day().unwrap_or(day)),
            QuotaPeriod::Month => {
                let first = day.replace_day(1).unwrap_or(day);
                let next = match day.month() {
                    Month::December => Date::from_calendar_date(day.year() + 1, Month::January, 1),
                    m => Date::from_calendar_date(day.year(), m.next(), 1),
                }
                .unwrap_or(first);
                (first, next)
            }
        };
        Self {
            period,
            start: start.with_time(Time::MIDNIGHT).assume_utc(),
            end: end.with_time(Time::MIDNIGHT).assume_utc(),
        }
    }

    /// A stable name for the window, e.g. `d2026-11-23` or `m2026-11`.
    pub fn label(&self) -> String {
        let d = self.start.date();
        match self.period {
            QuotaPeriod::Day => {
                format!("d{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
            }
            QuotaPeriod::Month => format!("m{:04}-{:02}", d.year(), u8::from(d.month())),
        }
    }

    /// Seconds until the window ends (at least one).
    pub fn retry_after_secs(&self, now: OffsetDateTime) -> u64 {
        retry_after_secs(unix_ns(self.end) - unix_ns(now))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const S: i128 = SECOND_NS;

    #[test]
    fn gcra_allows_a_burst_of_the_rate_then_one_per_interval() {
        let gcra = Gcra::per_minute(3);
        let now = 1_000 * S;
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(gcra.admit(tat, now).expect("within the burst"));
        }
        let wait = gcra
            .admit(tat, now)
            .expect_err("fourth call in the same instant");
        assert_eq!(wait, 20 * S);
        assert_eq!(retry_after_secs(wait), 20);
        // A refusal changes nothing: after the wait, one more call fits, not two.
        let later = now + wait;
        let tat = Some(gcra.admit(tat, later).expect("after the wait"));
        assert!(gcra.admit(tat, later).is_err());
        // Idle for a minute: the whole burst is back.
        let idle = later + 60 * S;
        let mut tat2 = tat;
        for _ in 0..3 {
            tat2 = Some(gcra.admit(tat2, idle).expect("burst after idling"));
        }
        assert!(gcra.admit(tat2, idle).is_err());
    }

    #[test]
    fn gcra_steady_rate_is_never_refused() {
        let gcra = Gcra::per_minute(60);
        let mut tat = None;
        for i in 0..1000 {
            tat = Some(gcra.admit(tat, i * S).expect("one a second at 60/min"));
        }
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_second() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(S + 1), 2);
    }

    #[test]
    fn quota_windows_are_utc_days_and_months() {
        let at = datetime!(2026-12-31 23:59:30 UTC);
        let day = QuotaWindow::containing(QuotaPeriod::Day, at);
        assert_eq!(day.start, datetime!(2026-12-31 00:00 UTC));
        assert_eq!(day.end, datetime!(2027-01-01 00:00 UTC));
        assert_eq!(day.retry_after_secs(at), 30);
        assert_eq!(day.label(), "d2026-12-31");
        let month = QuotaWindow::containing(QuotaPeriod::Month, at);
        assert_eq!(month.start, datetime!(2026-12-01 00:00 UTC));
        assert_eq!(month.end, datetime!(2027-01-01 00:00 UTC));
        assert_eq!(month.label(), "m2026-12");
        // Another offset names the same UTC window.
        let local = datetime!(2027-01-01 01:00 +02:00);
        assert_eq!(QuotaWindow::containing(QuotaPeriod::Day, local), day);
    }
}
