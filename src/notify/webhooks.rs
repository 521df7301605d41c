//! Delivers due webhook deliveries, apart from the scheduler's tick (its own
//! task: see `jobs::spawn_webhooks`): target rules checked again (DNS can
//! change), the connection pinned to the checked address, no redirects, a
//! short timeout; 2xx is delivered, anything else retried on the email
//! schedule and pauses the endpoint (see `domain::events::webhooks::health`).

use crate::domain::{TenantId, UnixTime};
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration as StdDuration,
};

use futures_util::{StreamExt, stream};
use tokio::{sync::Semaphore, time::Instant};

use time::OffsetDateTime;

use super::sender::{MAX_ATTEMPTS, backoff};
use crate::domain::crypto::random;
use crate::{
    db::Db,
    domain::{
        events::queue::Claim,
        events::webhooks::{
            WebhookSecret, WebhookUrl,
            deliveries::{self, ClaimedDelivery, Outcome},
            health, signature_header,
        },
    },
    error::AppResult,
};
use keysmith_verify::{Clock, Peppers};

/// Deliveries one claim takes, and at most this many of one tenant's.
const BATCH: i64 = 50;
const PER_TENANT_PER_CLAIM: i64 = 10;
/// Endpoints delivered to at once, and at most this many of one tenant.
const LANES: usize = 8;
const LANES_PER_TENANT: usize = 2;
/// An endpoint's turn in a round: once it has taken this long, its other
/// deliveries wait for the next round (no attempt counted).
const ENDPOINT_TURN: StdDuration = StdDuration::from_secs(15);
/// A tenant's turn: its endpoints not started this long into the round wait
/// for the next one.
const TENANT_TURN: StdDuration = StdDuration::from_secs(15);
/// A disabled endpoint's deliveries are looked at again after this;
/// enabling it makes them due at once.
const DISABLED_RECHECK: time::Duration = time::Duration::days(1);

/// What webhook delivery needs from the application.
#[derive(Debug, Clone, Copy)]
pub struct WebhookOutbound<'a> {
    pub db: &'a Db,
    pub clock: &'a dyn Clock,
    pub peppers: &'a Peppers,
    /// `KEYSMITH_WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
    /// `KEYSMITH_WEBHOOK_TIMEOUT_SECS`: one attempt, connection to answer.
    pub timeout: StdDuration,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookReport {
    pub delivered: u64,
    pub retrying: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Put back untried: endpoint paused or disabled, or its turn was over.
    pub deferred: u64,
}

impl std::ops::AddAssign for WebhookReport {
    fn add_assign(&mut self, other: Self) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.deferred += other.deferred;
    }
}

/// Delivers every row due now, round by round, until none is left. A round
/// delivers to several endpoints at once (one lane per endpoint, a few per
/// tenant), each within a turn, so a receiver that never answers costs its
/// own tenant one timeout per pause and nobody else anything.
#[tracing::instrument(skip_all)]
pub async fn deliver_due(out: WebhookOutbound<'_>) -> AppResult<WebhookReport> {
    let owner = random::base62(16);
    let claim = Claim {
        rows: BATCH,
        per_tenant: Some(PER_TENANT_PER_CLAIM),
    };
    let mut report = WebhookReport::default();
    loop {
        let now = out.clock.now();
        let batch = deliveries::claim_due(&out.db.pool, out.db.engine, &owner, claim, now).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        report += round(out, &owner, batch).await;
    }
}

/// One claimed batch: its lanes run at once, tenants interleaved so that
/// the first lanes started belong to as many tenants as possible.
async fn round(
    out: WebhookOutbound<'_>,
    owner: &str,
    batch: Vec<ClaimedDelivery>,
) -> WebhookReport {
    let started = Instant::now();
    let lanes = interleave(lanes_of(batch), |lane| lane[0].tenant_id.clone());
    let mut slots: HashMap<TenantId, Arc<Semaphore>> = HashMap::new();
    let lanes: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let slot = slots
                .entry(lane[0].tenant_id.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(LANES_PER_TENANT)))
                .clone();
            (slot, lane)
        })
        .collect();
    stream::iter(lanes)
        .map(|(slot, lane)| async move {
            let Ok(_turn) = slot.acquire().await else {
                return WebhookReport::default();
            };
            let late = started.elapsed() >= TENANT_TURN;
            run_lane(out, owner, lane, late).await
        })
        .buffer_unordered(LANES)
        .fold(WebhookReport::default(), |mut total, lane| async move {
            total += lane;
            total
        })
        .await
}

/// The batch's deliveries by endpoint, each lane in claim (id) order.
fn lanes_of(batch: Vec<ClaimedDelivery>) -> Vec<Vec<ClaimedDelivery>> {
    let mut lanes: Vec<Vec<ClaimedDelivery>> = Vec::new();
    for delivery in batch {
        match lanes
            .iter_mut()
            .find(|lane| lane[0].endpoint_id == delivery.endpoint_id)
        {
            Some(lane) => lane.push(delivery),
            None => lanes.push(vec![delivery]),
        }
    }
    lanes
}

/// Lanes reordered one tenant at a time: a tenant's first lane, the next
/// tenant's first, …, then every tenant's second, and so on.
fn interleave<T, K: PartialEq>(lanes: Vec<T>, tenant: impl Fn(&T) -> K) -> Vec<T> {
    let mut by_tenant: Vec<(K, VecDeque<T>)> = Vec::new();
    for lane in lanes {
        let key = tenant(&lane);
        match by_tenant.iter_mut().find(|(t, _)| *t == key) {
            Some((_, queue)) => queue.push_back(lane),
            None => by_tenant.push((key, VecDeque::from([lane]))),
        }
    }
    let mut out = Vec::new();
    while by_tenant.iter().any(|(_, queue)| !queue.is_empty()) {
        for (_, queue) in &mut by_tenant {
            out.extend(queue.pop_front());
        }
    }
    out
}

/// One endpoint's deliveries, in order, within its turn. After a failure
/// the endpoint is paused and the rest of its lane waits for the pause.
async fn run_lane(
    out: WebhookOutbound<'_>,
    owner: &str,
    lane: Vec<ClaimedDelivery>,
    late: bool,
) -> WebhookReport {
    let started = Instant::now();
    let mut report = WebhookReport::default();
    let first = out.clock.now();
    let mut wait_until = match (&lane[0].disabled_at, lane[0].paused_until) {
        (Some(_), _) => Some(first + DISABLED_RECHECK),
        (None, Some(paused)) if paused.to_datetime() > first => Some(paused.to_datetime()),
        _ => None,
    };
    for delivery in &lane {
        let now = out.clock.now();
        let out_of_turn = late || started.elapsed() >= ENDPOINT_TURN;
        if let Some(until) = wait_until.or(out_of_turn.then_some(now)) {
            report.deferred += 1;
            if let Err(err) = deliveries::defer(&out.db.pool, delivery, owner, until).await {
                tracing::error!(delivery_id = delivery.id, error = %err, "webhook delivery not put back");
            }
            continue;
        }
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
        let health = match &error {
            Some(error) => {
                tracing::warn!(delivery_id = delivery.id, attempts, status, error = %error, "webhook delivery failed");
                health::record_failure(&out.db.pool, &delivery.endpoint_id, error, now)
                    .await
                    .map(|pause| wait_until = Some(pause.unwrap_or(now + DISABLED_RECHECK)))
            }
            None => {
                tracing::info!(delivery_id = delivery.id, event = %delivery.event_type, "webhook delivered");
                health::record_success(&out.db.pool, &delivery.endpoint_id).await
            }
        };
        if let Err(err) = health {
            tracing::error!(webhook_id = %delivery.endpoint_id, error = %err, "webhook endpoint health not recorded");
        }
        let outcome = Outcome {
            status,
            error: error.as_deref(),
            retry_at,
        };
        if let Err(err) = deliveries::record(&out.db.pool, delivery, owner, outcome, now).await {
            tracing::error!(delivery_id = delivery.id, error = %err, "webhook outcome not recorded");
            report.skipped += 1;
        }
    }
    report
}

/// The current secret, and the previous one while its overlap lasts.
fn signing_secrets(
    peppers: &Peppers,
    delivery: &ClaimedDelivery,
    now: OffsetDateTime,
) -> AppResult<Vec<WebhookSecret>> {
    let mut secrets = vec![WebhookSecret::open(
        peppers,
        &delivery.endpoint_id,
        &delivery.secret_sealed,
    )?];
    if let (Some(sealed), Some(until)) = (
        &delivery.previous_secret_sealed,
        delivery.previous_secret_until,
    ) && until.to_datetime() > now
    {
        secrets.push(WebhookSecret::open(peppers, &delivery.endpoint_id, sealed)?);
    }
    Ok(secrets)
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
    let secrets = match signing_secrets(out.peppers, delivery, now) {
        Ok(secrets) => secrets,
        Err(_) => return (None, Err("the signing secret cannot be read".into())),
    };
    // No proxy from the environment: it would connect to the host by name,
    // wherever DNS points next, and the address check above would be moot.
    let mut builder = match keysmith_verify::tls::client_builder(None) {
        Ok(builder) => builder.timeout(out.timeout).no_proxy(),
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
    let signature = signature_header(UnixTime::from(now), &delivery.payload, &secrets);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_take_turns_by_tenant() {
        let lanes = vec![("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1), ("b", 2)];
        let order = interleave(lanes, |(tenant, _)| *tenant);
        assert_eq!(
            order,
            [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("a", 3)]
        );
        assert!(interleave(Vec::<(&str, i32)>::new(), |(t, _)| *t).is_empty());
    }
}
