//! Sign-in throttling per account and per client address. An attempt is
//! counted by one atomic upsert *before* any password is checked, and the
//! count it returns decides: of a burst, only the attempts that fit in the
//! limit ever reach the password check, whatever the interleaving.

use crate::domain::UnixTime;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::error::DomainResult;

/// How many attempts a subject gets in a window before it is locked.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max: i64,
    pub window_secs: i64,
}

/// Per account: 5 attempts in 15 minutes.
pub const ACCOUNT: Limits = Limits {
    max: 5,
    window_secs: 15 * 60,
};
/// Per client address (everyone behind one NAT shares it): 20 in 15 minutes.
pub const ADDRESS: Limits = Limits {
    max: 20,
    window_secs: 15 * 60,
};
/// Each attempt over the limit pushes the lock to at least this much per
/// excess attempt from now, but never more than `BACKOFF_CAP_SECS`: an
/// attacker who stops cannot keep the owner out for longer than that.
const BACKOFF_STEP_SECS: i64 = 60;
const BACKOFF_CAP_SECS: i64 = 15 * 60;

/// Counts one attempt for `subject`; true if it is within the limit (the
/// password may be checked), false if the subject is locked.
#[tracing::instrument(skip_all)]
pub async fn record_attempt(
    pool: &AnyPool,
    subject: &str,
    limits: Limits,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    // One statement: PostgreSQL locks the row for the upsert, SQLite has one
    // writer; either way no two attempts read the same count. `t` is the old
    // row; `backoff` = min(cap, step × attempts over the limit).
    let (attempts,): (i64,) = sqlx::query_as(
        "INSERT INTO sign_in_attempts (subject, attempts, reset_at) VALUES ($1, 1, $2 + $3) \
         ON CONFLICT (subject) DO UPDATE SET \
           attempts = CASE WHEN sign_in_attempts.reset_at <= $2 THEN 1 \
                           ELSE sign_in_attempts.attempts + 1 END, \
           reset_at = CASE \
             WHEN sign_in_attempts.reset_at <= $2 THEN $2 + $3 \
             WHEN sign_in_attempts.attempts < $4 THEN sign_in_attempts.reset_at \
             WHEN sign_in_attempts.reset_at >= $2 + CASE WHEN $5 * (sign_in_attempts.attempts + 1 - $4) > $6 THEN $6 ELSE $5 * (sign_in_attempts.attempts + 1 - $4) END \
               THEN sign_in_attempts.reset_at \
             ELSE $2 + CASE WHEN $5 * (sign_in_attempts.attempts + 1 - $4) > $6 THEN $6 ELSE $5 * (sign_in_attempts.attempts + 1 - $4) END \
           END \
         RETURNING attempts",
    )
    .bind(subject)
    .bind(UnixTime::from(now))
    .bind(limits.window_secs)
    .bind(limits.max)
    .bind(BACKOFF_STEP_SECS)
    .bind(BACKOFF_CAP_SECS)
    .fetch_one(pool)
    .await?;
    Ok(attempts <= limits.max)
}

/// Takes back this request's own attempt (it signed in, or was never
/// checked): a decrement, so attempts counted by other requests stay.
#[tracing::instrument(skip_all)]
pub async fn take_back(pool: &AnyPool, subject: &str, now: OffsetDateTime) -> DomainResult<()> {
    sqlx::query(
        "UPDATE sign_in_attempts SET attempts = attempts - 1 \
         WHERE subject = $1 AND attempts > 0 AND reset_at > $2",
    )
    .bind(subject)
    .bind(UnixTime::from(now))
    .execute(pool)
    .await?;
    Ok(())
}

/// Attempts counted for `subject` in its current window (0 if none).
pub async fn attempts(pool: &AnyPool, subject: &str, now: OffsetDateTime) -> DomainResult<i64> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT attempts FROM sign_in_attempts WHERE subject = $1 AND reset_at > $2",
    )
    .bind(subject)
    .bind(UnixTime::from(now))
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(0, |(n,)| n))
}

/// Forgets subjects whose window and back-off are over (scheduler).
pub async fn purge(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<u64> {
    let done = sqlx::query("DELETE FROM sign_in_attempts WHERE reset_at <= $1")
        .bind(UnixTime::from(now))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// The subject for an account: the email as typed, normalised.
pub fn account_subject(email: &str) -> String {
    format!("account:{email}")
}

/// The subject for a client address. IPv6 counts per /64: one host usually
/// holds a whole /64, so rotating within it must not buy fresh attempts.
pub fn address_subject(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("address:{v4}"),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("address:{v4}"),
            None => {
                let s = v6.segments();
                format!("address:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a = address_subject("2001:db8:1:2::1".parse().expect("ip"));
        let b = address_subject("2001:db8:1:2:ffff::9".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, address_subject("2001:db8:1:3::1".parse().expect("ip")));
        assert_eq!(
            address_subject("::ffff:192.0.2.1".parse().expect("ip")),
            "address:192.0.2.1"
        );
    }
}
