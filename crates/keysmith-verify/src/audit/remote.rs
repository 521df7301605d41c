//! The remote writer: audit records delivered to a Keysmith server in
//! batches (`POST /api/v1/audit-events`, with the verifier's management
//! key), for a layer or gateway that has no database.
//!
//! Records go from the queue into a bounded [`Spool`] at once, so requests
//! never wait on the network; one batch at a time goes out from the spool's
//! front. Each event gets its id when spooled and keeps it across retries,
//! so a batch whose answer was lost and is sent again is stored once. An
//! unreachable or failing server is retried with backoff (half a second,
//! doubling, at most 30 s) while the spool keeps filling; when full it drops
//! its oldest events and counts them. A batch the server refuses as invalid
//! (`400`, `404`, `413`, `422`) would be refused again: it is dropped,
//! counted and logged. [`AuditFlusher::shutdown`] delivers what is spooled,
//! giving up after [`RemoteAuditOptions::flush_timeout`].

use std::{future::Future, pin::Pin, time::Duration};

use reqwest::StatusCode;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{AuditFlusher, AuditRecord, AuditSink, spool::Spool, wire::WireEvent};
use crate::{backend::remote::RemoteVerifier, telemetry};

/// How the remote writer batches, spools and retries.
#[derive(Debug, Clone)]
pub struct RemoteAuditOptions {
    /// Events kept while the server cannot take them (default 100,000,
    /// about 300 bytes each); past that the oldest are dropped.
    pub spool_capacity: usize,
    /// Most events per batch (default 200, at most the server's 500).
    pub batch_events: usize,
    /// Most JSON bytes per batch (default 60,000: under the API's 64 KiB).
    pub batch_bytes: usize,
    /// How long an event waits for others to share its batch (default 100 ms).
    pub linger: Duration,
    /// First wait after a failed delivery; it doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long shutdown keeps trying to deliver what is spooled (default 10 s).
    pub flush_timeout: Duration,
}

impl Default for RemoteAuditOptions {
    fn default() -> Self {
        Self {
            spool_capacity: 100_000,
            batch_events: 200,
            batch_bytes: 60_000,
            linger: Duration::from_millis(100),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            flush_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts the remote writer: records queued in the sink (up to `capacity`)
/// are spooled and delivered to the server `verifier` asks.
pub fn spawn_remote_audit(
    verifier: &RemoteVerifier,
    capacity: usize,
    options: RemoteAuditOptions,
) -> (AuditSink, AuditFlusher) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (stop, stopped) = oneshot::channel();
    let target = Target {
        client: verifier.client.clone(),
        endpoint: format!("{}/api/v1/audit-events", verifier.base_url),
        management_key: verifier.management_key.clone(),
    };
    let batch_events = options.batch_events.clamp(1, super::wire::MAX_BATCH_EVENTS);
    let writer = Writer {
        spool: Spool::new(options.spool_capacity),
        options: RemoteAuditOptions {
            batch_events,
            ..options
        },
        delivered: 0,
    };
    let task = tokio::spawn(writer.run(target, rx, stopped));
    (AuditSink::new(tx), AuditFlusher { stop, task })
}

#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    endpoint: String,
    management_key: String,
}

/// What became of one delivery.
enum Delivery {
    Stored,
    /// Worth trying again later (unreachable, 5xx, 429, 401/403…).
    Retry(String),
    /// The server will never take this batch.
    Refused(String),
}

type InFlight = Pin<Box<dyn Future<Output = Delivery> + Send>>;

impl Target {
    fn send(&self, batch: &[Vec<u8>]) -> InFlight {
        let mut body = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 12);
        body.extend_from_slice(b"{\"events\":[");
        for (i, event) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event);
        }
        body.extend_from_slice(b"]}");
        let request = self
            .client
            .post(&self.endpoint)
            .bearer_auth(&self.management_key)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        Box::pin(async move {
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    return Delivery::Retry(format!("unreachable: {}", err.without_url()));
                }
            };
            let status = response.status();
            if status.is_success() {
                return Delivery::Stored;
            }
            // The error body names the field; it never holds a secret.
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            match status {
                StatusCode::BAD_REQUEST
                | StatusCode::NOT_FOUND
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNPROCESSABLE_ENTITY => {
                    Delivery::Refused(format!("{status}: {text}"))
                }
                _ => Delivery::Retry(format!("{status}: {text}")),
            }
        })
    }
}

struct Writer {
    spool: Spool,
    options: RemoteAuditOptions,
    delivered: u64,
}

impl Writer {
    async fn run(
        mut self,
        target: Target,
        mut rx: mpsc::Receiver<AuditRecord>,
        mut stopped: oneshot::Receiver<()>,
    ) -> u64 {
        let mut in_flight: Option<(Vec<Vec<u8>>, InFlight)> = None;
        let mut next_attempt = Instant::now();
        let mut backoff = self.options.retry_min;
        let mut receiving = true;
        let mut watching_stop = true;
        // Set once shutdown began: the time after which it gives up.
        let mut flush_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let flushing = flush_deadline.is_some();
            if in_flight.is_none()
                && !self.spool.is_empty()
                && (now >= next_attempt
                    || (flushing && backoff == self.options.retry_min)
                    || (self.spool.len() >= self.options.batch_events
                        && backoff == self.options.retry_min))
            {
                let batch = self
                    .spool
                    .take(self.options.batch_events, self.options.batch_bytes);
                let sending = target.send(&batch);
                in_flight = Some((batch, sending));
            }
            if let Some(deadline) = flush_deadline
                && !receiving
                && (in_flight.is_none() && self.spool.is_empty() || now >= deadline)
            {
                break;
            }
            let waiting = !self.spool.is_empty() && in_flight.is_none();
            tokio::select! {
                record = rx.recv(), if receiving => match record {
                    Some(record) => {
                        if self.spool.is_empty() && in_flight.is_none() && backoff == self.options.retry_min {
                            next_attempt = Instant::now() + self.options.linger;
                        }
                        self.spool.push(encode(&record));
                    }
                    None => {
                        receiving = false;
                        flush_deadline.get_or_insert(Instant::now() + self.options.flush_timeout);
                    }
                },
                signal = &mut stopped, if watching_stop => {
                    watching_stop = false;
                    if signal.is_ok() {
                        // No new records; what is queued and spooled still goes.
                        rx.close();
                        flush_deadline = Some(Instant::now() + self.options.flush_timeout);
                    }
                }
                delivery = async { in_flight.as_mut().expect("in flight").1.as_mut().await }, if in_flight.is_some() => {
                    let (batch, _) = in_flight.take().expect("in flight");
                    match delivery {
                        Delivery::Stored => {
                            self.delivered += batch.len() as u64;
                            telemetry::audit_delivered(batch.len() as u64);
                            backoff = self.options.retry_min;
                            next_attempt = Instant::now();
                        }
                        Delivery::Retry(why) => {
                            telemetry::audit_delivery_retry();
                            tracing::warn!(events = batch.len(), spooled = self.spool.len(), retry_in = ?backoff, why, "audit delivery to the keysmith server failed; retrying");
                            self.spool.put_back(batch);
                            next_attempt = Instant::now() + backoff;
                            backoff = (backoff * 2).min(self.options.retry_max);
                        }
                        Delivery::Refused(why) => {
                            tracing::error!(events = batch.len(), why, "the keysmith server refused an audit batch: dropped");
                            telemetry::audit_dropped(telemetry::DROPPED_REFUSED, batch.len() as u64);
                            next_attempt = Instant::now();
                        }
                    }
                }
                () = tokio::time::sleep_until(next_attempt), if waiting && next_attempt > now => {}
                () = tokio::time::sleep_until(flush_deadline.unwrap_or(now)), if flushing => {}
            }
        }
        let left = self.spool.len() + in_flight.map_or(0, |(batch, _)| batch.len());
        if left > 0 {
            tracing::error!(
                events = left,
                "audit events lost: the keysmith server could not take them before shutdown"
            );
            telemetry::audit_dropped(telemetry::DROPPED_SHUTDOWN, left as u64);
            telemetry::audit_spool_depth(0);
        }
        self.delivered
    }
}

/// The record as one event of a batch, under a fresh random id.
fn encode(record: &AuditRecord) -> Vec<u8> {
    let mut id = [0u8; 16];
    // Without the OS generator, an id from the time is still unique enough
    // for one gateway's retries.
    if getrandom::fill(&mut id).is_err() {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        id = nanos.to_le_bytes();
    }
    let id = hex::encode(id);
    serde_json::to_vec(&WireEvent::of(&id, record.row())).unwrap_or_default()
}
