//! The outbox table: enqueue (idempotent by `dedupe_key`), claim with a lease,
//! record the outcome of each attempt.

use crate::domain::{KeyId, ServiceUserId, TenantId, UnixTime};
use serde::Serialize;
use sqlx::{Any, AnyPool, Executor, Transaction};
use time::OffsetDateTime;

use crate::domain::events::notice::{Notice, WebhookDisabledNotice};
use crate::{
    config::Engine,
    domain::error::DomainResult,
    domain::events::queue::{self, Queue},
};

/// A row ready to enqueue.
#[derive(Debug)]
pub struct NewMail<'a> {
    pub tenant_id: &'a TenantId,
    pub key_id: &'a KeyId,
    pub threshold_days: Option<i64>,
    pub recipient: &'a str,
    pub notice: &'a Notice,
}

impl NewMail<'_> {
    /// One email per key, kind and threshold, ever.
    fn dedupe_key(&self) -> String {
        match self.threshold_days {
            Some(days) => format!("{}:{}:{days}", self.key_id, self.notice.kind()),
            None => format!("{}:{}", self.key_id, self.notice.kind()),
        }
    }
}

/// Enqueues a mail unless one with the same dedupe key exists; true if new.
pub async fn enqueue<'e>(
    executor: impl Executor<'e, Database = Any>,
    mail: NewMail<'_>,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let row = Row {
        tenant_id: mail.tenant_id,
        key_id: Some(mail.key_id),
        threshold_days: mail.threshold_days,
        dedupe_key: mail.dedupe_key(),
        recipient: mail.recipient,
        notice: mail.notice,
    };
    insert(executor, row, now).await
}

/// Tells each of `recipients` (the tenant's owners) that a webhook endpoint
/// was disabled: once per recipient and time it was disabled.
pub async fn enqueue_webhook_disabled(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    recipients: &[String],
    notice: &WebhookDisabledNotice,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let wrapped = Notice::WebhookDisabled(notice.clone());
    for recipient in recipients {
        let row = Row {
            tenant_id,
            key_id: None,
            threshold_days: None,
            dedupe_key: format!(
                "{}:{}:{}:{recipient}",
                notice.webhook_id,
                wrapped.kind(),
                notice.disabled_at.secs()
            ),
            recipient,
            notice: &wrapped,
        };
        insert(&mut **tx, row, now).await?;
    }
    Ok(())
}

/// One outbox row, whatever it is about.
struct Row<'a> {
    tenant_id: &'a TenantId,
    key_id: Option<&'a KeyId>,
    threshold_days: Option<i64>,
    dedupe_key: String,
    recipient: &'a str,
    notice: &'a Notice,
}

async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    row: Row<'_>,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let payload = serde_json::to_string(row.notice).map_err(anyhow::Error::from)?;
    let now = UnixTime::from(now);
    let inserted = sqlx::query(
        "INSERT INTO outbox (tenant_id, key_id, kind, threshold_days, dedupe_key, recipient, payload, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(row.tenant_id)
    .bind(row.key_id)
    .bind(row.notice.kind())
    .bind(row.threshold_days)
    .bind(row.dedupe_key)
    .bind(row.recipient)
    .bind(payload)
    .bind(now)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The key a notice to its service user's owner is about: what the outbox
/// needs of it (the `keys` room, which owns the row, builds this).
#[derive(Debug, Clone, Copy)]
pub struct AboutKey<'a> {
    pub tenant_id: &'a TenantId,
    pub key_id: &'a KeyId,
    pub service_user_id: &'a ServiceUserId,
}

/// Who a key's notice goes to: its service user, by name, and the owner's email.
#[derive(Debug, Clone)]
pub struct Owner {
    pub service_user: String,
    pub email: String,
}

/// Tells the owner of the key's service user what `notice` says, inside the
/// caller's transaction, so the notice exists if and only if its cause
/// does; once per key and kind. No owner email: no notice, and `notice`
/// may decline too (`None`, say when the owner made the change).
pub async fn enqueue_for_owner(
    tx: &mut Transaction<'_, Any>,
    key: AboutKey<'_>,
    notice: impl FnOnce(&Owner) -> Option<Notice>,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let Some(owner) = owner_of(tx, key.tenant_id, key.service_user_id).await? else {
        return Ok(());
    };
    let Some(notice) = notice(&owner) else {
        return Ok(());
    };
    let mail = NewMail {
        tenant_id: key.tenant_id,
        key_id: key.key_id,
        threshold_days: None,
        recipient: &owner.email,
        notice: &notice,
    };
    enqueue(&mut **tx, mail, now).await?;
    Ok(())
}

/// A service user's name and owner email, when it has an owner to tell.
async fn owner_of(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    service_user_id: &ServiceUserId,
) -> DomainResult<Option<Owner>> {
    let owner: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT name, owner_email FROM service_users WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(service_user_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(owner.and_then(|(service_user, email)| {
        email.map(|email| Owner {
            service_user,
            email,
        })
    }))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: i64,
    pub key_id: Option<KeyId>,
    pub tenant_id: TenantId,
    pub recipient: String,
    pub payload: String,
    pub attempts: i64,
}

/// Claims up to `limit` due rows for `owner` (see [`queue::claim_due`]).
pub async fn claim_due(
    pool: &AnyPool,
    engine: Engine,
    owner: &str,
    limit: i64,
    now: OffsetDateTime,
) -> DomainResult<Vec<ClaimedMail>> {
    queue::claim_due(
        pool,
        engine,
        Queue::Outbox,
        "SELECT id, key_id, tenant_id, recipient, payload, attempts FROM outbox \
         WHERE lease_owner = $1 AND status = 'pending' AND lease_until > $2 ORDER BY id",
        owner,
        queue::Claim {
            rows: limit,
            per_tenant: None,
        },
        now,
    )
    .await
}

/// What happened to one attempt.
#[derive(Debug)]
pub enum Attempt<'a> {
    Sent,
    /// Not worth sending any more (the key was revoked before its reminder went out).
    Cancelled(&'a str),
    Failed {
        error: &'a str,
        retry_at: Option<OffsetDateTime>,
    },
}

/// Records an attempt, only if `owner` still holds the lease.
pub async fn record(
    pool: &AnyPool,
    mail: &ClaimedMail,
    owner: &str,
    attempt: Attempt<'_>,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let now_unix = UnixTime::from(now);
    let query = match attempt {
        Attempt::Sent => sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND lease_owner = $3",
        )
        .bind(now_unix),
        Attempt::Cancelled(reason) => sqlx::query(
            "UPDATE outbox SET status = 'cancelled', last_error = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2 AND lease_owner = $3",
        )
        .bind(reason.to_owned()),
        Attempt::Failed { error, retry_at } => sqlx::query(
            "UPDATE outbox SET status = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3, lease_owner = NULL, lease_until = NULL \
             WHERE id = $4 AND lease_owner = $5",
        )
        .bind(if retry_at.is_some() { "pending" } else { "failed" })
        .bind(error.chars().take(500).collect::<String>())
        .bind(retry_at.map_or(now_unix, UnixTime::from)),
    };
    query.bind(mail.id).bind(owner).execute(pool).await?;
    Ok(())
}

/// A key's notification history, for the JSON API and the admin UI.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NotificationRecord {
    #[serde(skip)]
    pub id: i64,
    pub kind: String,
    pub threshold_days: Option<i64>,
    pub recipient: String,
    /// `pending`, `sent`, `failed` (gave up after retries) or `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: UnixTime,
    pub sent_at: Option<UnixTime>,
}

pub async fn list_for_key(
    pool: &AnyPool,
    tenant_id: &TenantId,
    key_id: &KeyId,
) -> DomainResult<Vec<NotificationRecord>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, threshold_days, recipient, status, attempts, last_error, created_at, sent_at \
         FROM outbox WHERE tenant_id = $1 AND key_id = $2 ORDER BY id DESC",
    )
    .bind(tenant_id)
    .bind(key_id)
    .fetch_all(pool)
    .await?)
}
