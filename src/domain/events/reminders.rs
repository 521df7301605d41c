//! Expiry reminders: 30, 7 and 1 days before a key expires, each once.

use crate::domain::{KeyId, TenantId, UnixTime};
use sqlx::AnyPool;
use time::{Duration, OffsetDateTime};

use crate::domain::error::DomainResult;
use crate::domain::{
    events::notice::{ExpiryReminder, Notice},
    events::outbox::{self, NewMail},
};

/// Days before expiry at which the owner hears about it, largest first.
pub const THRESHOLDS: [i64; 3] = [30, 7, 1];
const DAY: i64 = 86_400;

/// The threshold whose window `now` is in, if it should be sent.
///
/// Threshold T's window runs from `expires − T days` until the next smaller
/// threshold's moment (or the expiry). Only the current window counts, so an
/// instance that was down for weeks sends one up-to-date reminder, not three.
/// A threshold whose moment came before the key was created is never sent:
/// a key created with 20 days to live hears at 7 and 1 days only.
pub fn due_threshold(created_at: i64, expires_at: i64, now: i64) -> Option<i64> {
    THRESHOLDS.iter().enumerate().find_map(|(i, &days)| {
        let start = expires_at - days * DAY;
        let end = THRESHOLDS
            .get(i + 1)
            .map_or(expires_at, |next| expires_at - next * DAY);
        (start <= now && now < end && created_at < start).then_some(days)
    })
}

#[derive(Debug, sqlx::FromRow)]
struct Candidate {
    id: KeyId,
    tenant_id: TenantId,
    name: String,
    hint: String,
    created_at: UnixTime,
    expires_at: UnixTime,
    service_user: String,
    owner_email: String,
    tenant_name: String,
}

/// What one pass of [`enqueue_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReminderReport {
    /// Reminders newly queued.
    pub enqueued: u64,
    /// Keys whose reminder could not be queued: logged, tried again next pass.
    pub skipped: u64,
}

/// Enqueues every reminder due at `now`. One key that fails is skipped and
/// reported; the others still get theirs.
#[tracing::instrument(skip_all)]
pub async fn enqueue_due(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<ReminderReport> {
    let now_unix = UnixTime::from(now);
    let candidates: Vec<Candidate> = sqlx::query_as(
        "SELECT k.id, k.tenant_id, k.name, k.hint, k.created_at, k.expires_at, s.name AS service_user, \
         s.owner_email, t.name AS tenant_name \
         FROM api_keys k JOIN service_users s ON s.id = k.service_user_id JOIN tenants t ON t.id = k.tenant_id \
         WHERE k.status = 'active' AND k.expires_at > $1 AND k.expires_at <= $2 AND s.owner_email IS NOT NULL",
    )
    .bind(now_unix)
    .bind(now_unix + Duration::days(THRESHOLDS[0]))
    .fetch_all(pool)
    .await?;
    let mut report = ReminderReport::default();
    for key in candidates {
        let Some(days) = due_threshold(
            key.created_at.secs(),
            key.expires_at.secs(),
            now_unix.secs(),
        ) else {
            continue;
        };
        let notice = Notice::ExpiryReminder(ExpiryReminder {
            tenant_name: key.tenant_name,
            service_user: key.service_user,
            key_name: key.name,
            key_id: key.id.clone(),
            hint: key.hint,
            expires_at: key.expires_at,
            threshold_days: days,
        });
        let mail = NewMail {
            tenant_id: &key.tenant_id,
            key_id: &key.id,
            threshold_days: Some(days),
            recipient: &key.owner_email,
            notice: &notice,
        };
        match enqueue_with_webhook(pool, mail, key.expires_at, now).await {
            Ok(true) => report.enqueued += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::error!(key_id = %key.id, error = %err, "reminder skipped");
                report.skipped += 1;
            }
        }
    }
    Ok(report)
}

/// The reminder and its `key.expiring` webhook event, together and once per
/// threshold: the outbox's dedupe key decides for both.
async fn enqueue_with_webhook(
    pool: &AnyPool,
    mail: NewMail<'_>,
    expires_at: UnixTime,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let mut tx = crate::db::begin_write(pool).await?;
    let (tenant_id, key_id, days) = (mail.tenant_id, mail.key_id, mail.threshold_days);
    let new = outbox::enqueue(&mut *tx, mail, now).await?;
    if new {
        let data = serde_json::json!({
            "key_id": key_id,
            "expires_at": expires_at,
            "days_left": days,
        });
        crate::domain::events::webhooks::enqueue(&mut tx, tenant_id, "key.expiring", data, now)
            .await?;
    }
    tx.commit().await?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXP: i64 = 100 * DAY;

    #[test]
    fn windows() {
        let created = 0;
        assert_eq!(due_threshold(created, EXP, EXP - 31 * DAY), None);
        assert_eq!(due_threshold(created, EXP, EXP - 30 * DAY), Some(30));
        assert_eq!(due_threshold(created, EXP, EXP - 7 * DAY - 1), Some(30));
        assert_eq!(due_threshold(created, EXP, EXP - 7 * DAY), Some(7));
        assert_eq!(due_threshold(created, EXP, EXP - DAY), Some(1));
        assert_eq!(due_threshold(created, EXP, EXP - 1), Some(1));
        assert_eq!(due_threshold(created, EXP, EXP), None);
    }

    #[test]
    fn short_lived_keys_skip_thresholds_behind_them() {
        let created = EXP - 20 * DAY;
        assert_eq!(
            due_threshold(created, EXP, created),
            None,
            "the 30-day moment was before creation"
        );
        assert_eq!(due_threshold(created, EXP, EXP - 7 * DAY), Some(7));
        let exactly_thirty = EXP - 30 * DAY;
        assert_eq!(
            due_threshold(exactly_thirty, EXP, exactly_thirty),
            None,
            "not ahead: it is now"
        );
    }

    proptest! {
        #[test]
        fn due_thresholds_are_known_and_within_their_window(created in 0i64..EXP, now in 0i64..EXP + DAY) {
            if let Some(days) = due_threshold(created, EXP, now) {
                prop_assert!(THRESHOLDS.contains(&days));
                prop_assert!(now >= EXP - days * DAY && now < EXP);
                prop_assert!(created < EXP - days * DAY);
            }
        }
    }
}
