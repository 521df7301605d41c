//! Delivers due outbox rows: one attempt each, retried with exponential backoff.

use std::sync::atomic::Ordering;

use time::Duration;

use super::{mailer::Mailer, render};
use crate::domain::crypto::random;
use crate::{
    db::Db,
    domain::DomainResult,
    domain::{
        events::notice::Notice,
        events::outbox::{self, Attempt, ClaimedMail},
        keys::{self, KeyState},
    },
    metrics::Metrics,
};
use keysmith_verify::Clock;

/// Attempts before a mail is marked `failed` (about 16 hours of retries).
pub const MAX_ATTEMPTS: i64 = 12;
const BATCH: i64 = 50;

/// Delay before attempt `attempts + 1`: 30 s, 1 min, 2 min … capped at 4 h.
pub fn backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    Duration::seconds((30_i64 << exponent).min(4 * 3600))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Rows whose outcome could not be recorded: logged; their lease lapses
    /// and a later pass takes them up again.
    pub skipped: u64,
}

/// What delivery needs from the application, and nothing more.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    pub db: &'a Db,
    pub clock: &'a dyn Clock,
    pub mailer: &'a Mailer,
    pub metrics: &'a Metrics,
    /// Links in emails point here.
    pub public_url: &'a str,
}

/// Delivers every row due now, batch by batch, until none is left.
#[tracing::instrument(skip_all)]
pub async fn deliver_due(out: Outbound<'_>) -> DomainResult<DeliveryReport> {
    let owner = random::base62(16);
    let mut report = DeliveryReport::default();
    loop {
        let now = out.clock.now();
        let batch = outbox::claim_due(&out.db.pool, out.db.engine, &owner, BATCH, now).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for mail in &batch {
            if let Err(err) = deliver_one(out, &owner, mail, &mut report).await {
                tracing::error!(mail_id = mail.id, error = %err, "email delivery skipped");
                report.skipped += 1;
            }
        }
    }
}

async fn deliver_one(
    out: Outbound<'_>,
    owner: &str,
    mail: &ClaimedMail,
    report: &mut DeliveryReport,
) -> DomainResult<()> {
    let now = out.clock.now();
    let notice: Notice = match serde_json::from_str(&mail.payload) {
        Ok(notice) => notice,
        Err(err) => {
            report.failed += 1;
            let error = format!("unreadable payload: {err}");
            return outbox::record(
                &out.db.pool,
                mail,
                owner,
                Attempt::Failed {
                    error: &error,
                    retry_at: None,
                },
                now,
            )
            .await;
        }
    };
    if let Notice::ExpiryReminder(reminder) = &notice
        && !key_still_active(out, mail, now).await?
    {
        report.cancelled += 1;
        tracing::info!(key_id = %reminder.key_id, "reminder cancelled: the key is no longer active");
        return outbox::record(
            &out.db.pool,
            mail,
            owner,
            Attempt::Cancelled("the key is no longer active"),
            now,
        )
        .await;
    }
    let result = match render::render(&notice, out.public_url, now) {
        Ok(rendered) => out.mailer.send(mail.id, &mail.recipient, &rendered).await,
        Err(err) => Err(anyhow::Error::new(err).context("failed to render the email")),
    };
    let metrics = out.metrics;
    match result {
        Ok(()) => {
            report.sent += 1;
            metrics.emails_sent.fetch_add(1, Ordering::Relaxed);
            tracing::info!(outbox_id = mail.id, kind = notice.kind(), "email sent");
            outbox::record(&out.db.pool, mail, owner, Attempt::Sent, now).await
        }
        Err(err) => {
            let error = format!("{err:#}");
            let attempts = mail.attempts + 1;
            let retry_at = (attempts < MAX_ATTEMPTS).then(|| now + backoff(mail.attempts));
            metrics
                .email_attempts_failed
                .fetch_add(1, Ordering::Relaxed);
            if retry_at.is_some() {
                report.retrying += 1;
                tracing::warn!(outbox_id = mail.id, attempts, error = %error, "email delivery failed; will retry");
            } else {
                report.failed += 1;
                metrics.emails_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(outbox_id = mail.id, attempts, error = %error, "email delivery failed for good");
            }
            outbox::record(
                &out.db.pool,
                mail,
                owner,
                Attempt::Failed {
                    error: &error,
                    retry_at,
                },
                now,
            )
            .await
        }
    }
}

async fn key_still_active(
    out: Outbound<'_>,
    mail: &ClaimedMail,
    now: time::OffsetDateTime,
) -> DomainResult<bool> {
    let Some(key_id) = &mail.key_id else {
        return Ok(false);
    };
    // Reminders are for keys still in use; a rotated key has a successor.
    let current = keys::state_of(&out.db.pool, &mail.tenant_id, key_id, now).await?;
    Ok(current == Some(KeyState::Active))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::seconds(30));
        assert_eq!(backoff(1), Duration::seconds(60));
        assert_eq!(backoff(3), Duration::seconds(240));
        assert_eq!(backoff(20), Duration::hours(4));
        let total: i64 = (0..MAX_ATTEMPTS).map(|a| backoff(a).whole_seconds()).sum();
        assert!(
            total > 12 * 3600,
            "retries span at least half a day: {total}s"
        );
    }
}
