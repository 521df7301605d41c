//! `Idempotency-Key` on the JSON API's writes: a client that retries a
//! create or a rotation (its connection dropped before the answer came) gets
//! the first answer again instead of a second key. One row per credential and
//! client key, kept a day.
//!
//! The first answer can hold a key shown once, so it is stored sealed under
//! the pepper ([`sealed`]) and only for the credential that caused it: the
//! scope is an HMAC of that credential, so another key (or someone guessing
//! the client's Idempotency-Key) reaches nothing.

use keysmith_verify::Peppers;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use time::{Duration, OffsetDateTime};

use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{
        UnixTime,
        crypto::sealed::{self, Purpose},
    },
};

/// How long an answer is replayed.
pub const RETENTION: Duration = Duration::DAY;

/// A request still unanswered after this long is taken as abandoned (its
/// process died): the next retry runs it again rather than waiting a day.
pub const ABANDONED_AFTER: Duration = Duration::MINUTE;

/// The longest client key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// Where one request stands against an Idempotency-Key.
#[derive(Debug)]
pub enum Claim {
    /// First use: run the request, then [`complete`] or [`release`].
    New,
    /// Answered before: this status and JSON body, again.
    Replay { status: u16, body: Vec<u8> },
    /// The same request is being answered right now.
    InFlight,
    /// The key was used with another request (method, path or body).
    Mismatch,
}

/// One request under one client key, as the store names it.
#[derive(Debug)]
pub struct Attempt {
    scope: String,
    key: String,
    fingerprint: String,
}

impl Attempt {
    /// `credential` is the request's bearer credential; `client_key` its
    /// Idempotency-Key header; `request` everything that makes two requests
    /// the same (method, path, body).
    pub fn new(
        peppers: &Peppers,
        credential: &[u8],
        client_key: &str,
        request: &[&[u8]],
    ) -> DomainResult<Self> {
        let valid = (1..=MAX_KEY_LEN).contains(&client_key.len())
            && client_key.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(DomainError::Malformed(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters (a UUID is a good choice)"
                ),
            ));
        }
        let mut scoped = b"keysmith idempotency scope\0".to_vec();
        scoped.extend_from_slice(credential);
        let mut fingerprint = Sha256::new();
        for part in request {
            fingerprint.update((part.len() as u64).to_be_bytes());
            fingerprint.update(part);
        }
        Ok(Self {
            scope: hex::encode(peppers.digest_current(&scoped)),
            key: client_key.to_owned(),
            fingerprint: hex::encode(fingerprint.finalize()),
        })
    }

    fn row_id(&self) -> String {
        format!("{}\0{}", self.scope, self.key)
    }
}

/// Claims `attempt`'s key, or says what the earlier request left. Two
/// concurrent claims of one key: the insert lets exactly one be [`Claim::New`].
pub async fn claim(
    pool: &AnyPool,
    peppers: &Peppers,
    attempt: &Attempt,
    now: OffsetDateTime,
) -> DomainResult<Claim> {
    let now = UnixTime::from(now);
    // A day-old answer, or a request abandoned mid-way, frees its key.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 \
         AND (created_at <= $3 OR (status IS NULL AND created_at <= $4))",
    )
    .bind(&attempt.scope)
    .bind(&attempt.key)
    .bind(now - RETENTION)
    .bind(now - ABANDONED_AFTER)
    .execute(pool)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&attempt.scope)
    .bind(&attempt.key)
    .bind(&attempt.fingerprint)
    .bind(now)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let earlier: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT fingerprint, status, response FROM idempotency_keys \
         WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(&attempt.scope)
    .bind(&attempt.key)
    .fetch_optional(pool)
    .await?;
    Ok(match earlier {
        // Freed between our insert and this read: the retry may claim it.
        None => Claim::InFlight,
        Some((fingerprint, _, _)) if fingerprint != attempt.fingerprint => Claim::Mismatch,
        Some((_, Some(status), Some(response))) => Claim::Replay {
            status: u16::try_from(status).map_err(anyhow::Error::from)?,
            body: sealed::open(
                peppers,
                Purpose::IdempotentResponse,
                &attempt.row_id(),
                &response,
            )
            .map_err(anyhow::Error::from)?,
        },
        Some(_) => Claim::InFlight,
    })
}

/// Keeps the answer to a claimed key for replay.
pub async fn complete(
    pool: &AnyPool,
    peppers: &Peppers,
    attempt: &Attempt,
    status: u16,
    body: &[u8],
) -> DomainResult<()> {
    let response = sealed::seal(
        peppers,
        Purpose::IdempotentResponse,
        &attempt.row_id(),
        body,
    )?;
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, response = $2 \
         WHERE scope = $3 AND idempotency_key = $4 AND status IS NULL",
    )
    .bind(i64::from(status))
    .bind(response)
    .bind(&attempt.scope)
    .bind(&attempt.key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Frees a claimed key whose request did not run to an answer worth
/// repeating (a server error, or a credential refused): a retry runs again.
pub async fn release(pool: &AnyPool, attempt: &Attempt) -> DomainResult<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND status IS NULL",
    )
    .bind(&attempt.scope)
    .bind(&attempt.key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops answers older than a day (the scheduler's purge).
pub async fn purge(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<u64> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= $1")
        .bind(UnixTime::from(now) - RETENTION)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
