//! Delivers due webhook deliveries: target rules checked again (DNS can
//! change), the connection pinned to the checked address, no redirects, a
//! short timeout; 2xx is delivered, anything else retried on the email schedule.

use crate::domain::UnixTime;
use std::time::Duration as StdDuration;

use time::OffsetDateTime;

use super::sender::{MAX_ATTEMPTS, backoff};
use crate::domain::random;
use crate::{
    db::Db,
    domain::webhooks::{
        WebhookSecret, WebhookUrl,
        deliveries::{self, ClaimedDelivery, Outcome},
    },
    error::AppResult,
};
use keysmith_verify::{Clock, Peppers};

const BATCH: i64 = 50;
const TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// What webhook delivery needs from the application.
#[derive(Debug, Clone, Copy)]
pub struct WebhookOutbound<'a> {
    pub db: &'a Db,
    pub clock: &'a dyn Clock,
    pub peppers: &'a Peppers,
    /// `KEYSMITH_WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookReport {
    pub delivered: u64,
    pub retrying: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// Delivers every row due now, batch by batch, until none is left.
#[tracing::instrument(skip_all)]
pub async fn deliver_due(out: WebhookOutbound<'_>) -> AppResult<WebhookReport> {
    let owner = random::base62(16);
    let mut report = WebhookReport::default();
    loop {
        let now = out.clock.now();
        let batch = deliveries::claim_due(&out.db.pool, out.db.engine, &owner, BATCH, now).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for delivery in &batch {
            let now = out.clock.now();
            let (status, result) = attempt(out, delivery, now).await;
            let error = result.err();
            let attempts = delivery.attempts + 1;
            let retry_at = error
                .as_ref()
                .and_then(|_| (attempts < MAX_ATTEMPTS).then(|| now + backoff(delivery.attempts)));
            match (&error, retry_at) {
                (None, _) => report.delivered += 1,
                (Some(_), Some(_)) => report.retrying += 1,
                (Some(_), None) => report.failed += 1,
            }
            if let Some(error) = &error {
                tracing::warn!(delivery_id = delivery.id, attempts, status, error = %error, "webhook delivery failed");
            } else {
                tracing::info!(delivery_id = delivery.id, event = %delivery.event_type, "webhook delivered");
            }
            let outcome = Outcome {
                status,
                error: error.as_deref(),
                retry_at,
            };
            if let Err(err) = deliveries::record(&out.db.pool, delivery, &owner, outcome, now).await
            {
                tracing::error!(delivery_id = delivery.id, error = %err, "webhook outcome not recorded");
                report.skipped += 1;
            }
        }
    }
}

/// One POST: the receiver's status (if it answered) and whether it was a 2xx.
async fn attempt(
    out: WebhookOutbound<'_>,
    delivery: &ClaimedDelivery,
    now: OffsetDateTime,
) -> (Option<u16>, Result<(), String>) {
    let url = match WebhookUrl::parse(&delivery.url) {
        Ok(url) => url,
        Err(err) => return (None, Err(err.to_string())),
    };
    let addrs = match url.resolve(out.allow_private).await {
        Ok(addrs) => addrs,
        Err(err) => return (None, Err(err.to_string())),
    };
    let secret =
        match WebhookSecret::open(out.peppers, &delivery.endpoint_id, &delivery.secret_sealed) {
            Ok(secret) => secret,
            Err(_) => return (None, Err("the signing secret cannot be read".into())),
        };
    // No proxy from the environment: it would connect to the host by name,
    // wherever DNS points next, and the address check above would be moot.
    let mut builder = match keysmith_verify::tls::client_builder(None) {
        Ok(builder) => builder.timeout(TIMEOUT).no_proxy(),
        Err(err) => return (None, Err(format!("TLS setup failed: {err}"))),
    };
    // Connect to the address just checked, not to whatever DNS says next.
    if let Some(url::Host::Domain(host)) = url.url().host() {
        builder = builder.resolve_to_addrs(host, &addrs);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(err) => return (None, Err(format!("client setup failed: {err}"))),
    };
    let signature = secret.signature(UnixTime::from(now), &delivery.payload);
    let sent = client
        .post(url.url().clone())
        .header("content-type", "application/json")
        .header("user-agent", "Keysmith-Webhooks/1")
        .header("keysmith-signature", signature)
        .header("keysmith-event", &delivery.event_type)
        .body(delivery.payload.clone())
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), Ok(())),
        Ok(res) => {
            let status = res.status().as_u16();
            (
                Some(status),
                Err(format!("the receiver answered HTTP {status}")),
            )
        }
        // Without the URL: reqwest's message would otherwise repeat it.
        Err(err) => (None, Err(format!("request failed: {}", err.without_url()))),
    }
}
