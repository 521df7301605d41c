//! Prometheus metrics at `/metrics`, from two sources:
//!
//! - this instance's counters below (verify endpoint, emails, scheduler,
//!   sign-in), atomics owned by the application state;
//! - the process's `metrics` recorder: key lifecycle events, counted in the
//!   domain wherever the action comes from (API, admin UI, CLI, scheduler,
//!   scanner), and the verification layer's own metrics (see
//!   `keysmith_verify::telemetry`), so `keysmith gateway` reports too.

use std::{
    fmt::Write,
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use keysmith_verify::VerifyCode;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once (`None` if another
/// recorder was installed first: then its owner renders it).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
                    HTTP_DURATION_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            drain_histograms_periodically(handle.clone());
            metrics::describe_counter!(
                KEY_EVENTS,
                "Key lifecycle events (created, rotated, revoked, expired) by tenant slug and by where they came from."
            );
            describe_http_metrics();
            Some(handle)
        })
        .as_ref()
}

/// `keysmith --version`: the crate version, the commit and its date (see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KEYSMITH_GIT_COMMIT"),
    " ",
    env!("KEYSMITH_BUILD_DATE"),
    ")"
);

const BUILD_INFO: &str = "keysmith_build_info";
pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

/// From a millisecond to ten seconds: an API call, an argon2 sign-in, a slow database.
const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn describe_http_metrics() {
    metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say which build runs (version, git commit, commit date)."
    );
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => env!("KEYSMITH_GIT_COMMIT"),
        "date" => env!("KEYSMITH_BUILD_DATE")
    )
    .set(1.0);
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template (never the raw path) and status."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from request to response head, by method, route template and status."
    );
}

/// Counts one answered request. `route` is the router's template
/// (`/api/v1/tenants/{tenant}/keys/{id}`), so the label set stays bounded and
/// no email or id from a path reaches the metrics.
pub fn http_request(method: &'static str, route: String, status: u16, seconds: f64) {
    let status = status.to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route, "status" => status)
        .record(seconds);
}

/// How often recorded histogram samples are folded into their summaries.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample (the layer records one per
/// verification) until something folds them into their summaries; a
/// `/metrics` scrape does, but nothing guarantees a scraper. Unscraped, a
/// gateway grew from 20 to 167 MiB in a 10-minute soak. Fold them on our own
/// clock, on a thread of its own so it needs no runtime.
fn drain_histograms_periodically(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "metrics upkeep thread not started: histograms grow until scraped");
    }
}

pub const KEY_EVENTS: &str = "keysmith_key_events_total";

/// Counts a key lifecycle event of the tenant `tenant_slug`, made
/// through `via` (the domain names it: `Actor::channel`). Plain labels, so
/// this ground-floor module imports nothing of the domain above it.
pub fn key_event(event: &'static str, tenant_slug: &str, via: &'static str) {
    metrics::counter!(KEY_EVENTS, "event" => event, "tenant" => tenant_slug.to_owned(), "via" => via)
        .increment(1);
}

const CODES: [VerifyCode; 7] = [
    VerifyCode::Valid,
    VerifyCode::Malformed,
    VerifyCode::NotFound,
    VerifyCode::Expired,
    VerifyCode::Revoked,
    VerifyCode::Disabled,
    VerifyCode::ToolNotAllowed,
];

#[derive(Debug, Default)]
pub struct Metrics {
    verifications: [AtomicU64; CODES.len()],
    pub emails_sent: AtomicU64,
    pub email_attempts_failed: AtomicU64,
    pub emails_failed: AtomicU64,
    pub scheduler_steps_failed: AtomicU64,
    pub scheduler_rows_skipped: AtomicU64,
    /// Passwords actually checked (argon2 runs) at sign-in: what throttling
    /// and the hashing limit bound.
    pub password_checks: AtomicU64,
}

impl Metrics {
    pub fn count_verification(&self, code: VerifyCode) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.verifications[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP keysmith_verifications_total Key verifications by result code.\n# TYPE keysmith_verifications_total counter\n");
        for (code, count) in CODES.iter().zip(&self.verifications) {
            let _ = writeln!(
                out,
                "keysmith_verifications_total{{code=\"{}\"}} {}",
                code.as_str(),
                count.load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in [
            (
                "keysmith_emails_sent_total",
                "Owner emails delivered.",
                &self.emails_sent,
            ),
            (
                "keysmith_email_attempts_failed_total",
                "Email delivery attempts that failed (retried or not).",
                &self.email_attempts_failed,
            ),
            (
                "keysmith_emails_failed_total",
                "Owner emails given up on after every retry.",
                &self.emails_failed,
            ),
            (
                "keysmith_scheduler_steps_failed_total",
                "Scheduler steps (sweep, reminders, delivery, purge) that failed; the others still ran.",
                &self.scheduler_steps_failed,
            ),
            (
                "keysmith_scheduler_rows_skipped_total",
                "Keys or emails a scheduler step skipped after an error, for a later tick.",
                &self.scheduler_rows_skipped,
            ),
            (
                "keysmith_sign_in_password_checks_total",
                "Passwords checked at admin sign-in (throttled attempts are not).",
                &self.password_checks,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        if let Some(process) = recorder() {
            out.push_str(&process.render());
        }
        out
    }
}
