//! The lifecycle clock: periodic work inside `keysmith serve`.

use std::sync::atomic::Ordering;

use tokio::{sync::watch, task::JoinHandle};

use crate::{
    domain::{
        audit, audit::rollups, events::anomalies, events::reminders, keys, oauth,
        people::form_tokens, people::sign_in_throttle,
    },
    notify::{sender, webhooks},
    state::AppState,
};

/// Runs one scheduler tick: everything due at the state's clock but webhook
/// deliveries, which have their own task ([`spawn_webhooks`]) so that no
/// tenant's receiver can hold up sweeps and owner emails. Each step is
/// idempotent and safe to run on several instances at once, and each runs
/// whatever happened to the ones before it: a failing step is logged and
/// counted, and the tick reports which failed.
pub async fn tick(state: &AppState) -> anyhow::Result<()> {
    let _one_at_a_time = state.ticking.lock().await;
    let metrics = &state.metrics;
    let mut failed: Vec<(&str, anyhow::Error)> = Vec::new();
    let mut skipped = 0;
    match keys::sweep(state.pool(), state.now()).await {
        Ok(report) => skipped += report.skipped,
        Err(err) => failed.push(("sweep", err.into())),
    }
    match reminders::enqueue_due(state.pool(), state.now()).await {
        Ok(report) => skipped += report.skipped,
        Err(err) => failed.push(("reminders", err.into())),
    }
    if let Err(err) = anomalies::enqueue_due(state.pool(), state.now()).await {
        failed.push(("anomalies", err.into()));
    }
    let outbound = sender::Outbound {
        db: &state.db,
        clock: state.clock.as_ref(),
        mailer: &state.mailer,
        metrics,
        public_url: &state.config.public_url,
    };
    match sender::deliver_due(outbound).await {
        Ok(report) => skipped += report.skipped,
        Err(err) => failed.push(("delivery", err.into())),
    }
    if let Err(err) = purge(state).await {
        failed.push(("purge", err));
    }
    // Before retention: it keeps the raw rows of any day not rolled up.
    if let Err(err) = rollups::roll_up_due(state.pool(), state.now()).await {
        failed.push(("audit rollups", err.into()));
    } else if let Err(err) = rollups::roll_up_hours(state.pool(), state.now()).await {
        failed.push(("audit rollups", err.into()));
    } else if let Err(err) = rollups::roll_up_minutes(state.pool(), state.now()).await {
        failed.push(("audit rollups", err.into()));
    }
    let retention = state.config.audit_retention_days;
    if let Err(err) = audit::purge_old_calls(state.pool(), state.now(), retention).await {
        failed.push(("audit retention", err.into()));
    }
    metrics
        .scheduler_rows_skipped
        .fetch_add(skipped, Ordering::Relaxed);
    if failed.is_empty() {
        return Ok(());
    }
    for (step, err) in &failed {
        tracing::error!(step, error = %err, "scheduler step failed; the others ran");
    }
    metrics
        .scheduler_steps_failed
        .fetch_add(failed.len() as u64, Ordering::Relaxed);
    let steps: Vec<&str> = failed.iter().map(|(step, _)| *step).collect();
    anyhow::bail!("scheduler steps failed: {}", steps.join(", "))
}

/// Forgets what only mattered for a while: expired form tokens, sign-in
/// attempts whose window and back-off are over, OAuth consents never
/// redeemed and registered clients never used, day-old idempotent answers,
/// expired sessions.
async fn purge(state: &AppState) -> anyhow::Result<()> {
    form_tokens::purge(state.pool(), state.now()).await?;
    sign_in_throttle::purge(state.pool(), state.now()).await?;
    oauth::tokens::purge_expired(state.pool(), state.now()).await?;
    // Abandoned consents first: a client whose only grant was one is unused.
    oauth::pending::sweep_unredeemed(state.pool(), state.now()).await?;
    oauth::codes::purge_expired(state.pool(), state.now()).await?;
    let unused_hours = state.config.oauth_unused_client_hours;
    oauth::clients::purge::purge_unused(state.pool(), state.now(), unused_hours).await?;
    keys::idempotency::purge(state.pool(), state.now()).await?;
    state
        .sessions
        .delete_expired()
        .await
        .map_err(|err| anyhow::anyhow!("failed to delete expired sessions: {err}"))?;
    Ok(())
}

/// One webhook delivery round: every delivery due at the state's clock.
pub async fn deliver_webhooks(state: &AppState) -> anyhow::Result<webhooks::WebhookReport> {
    let _one_at_a_time = state.delivering_webhooks.lock().await;
    let outbound = webhooks::WebhookOutbound {
        db: &state.db,
        clock: state.clock.as_ref(),
        peppers: &state.peppers,
        allow_private: state.config.webhook_allow_private,
        timeout: state.config.webhook_timeout,
    };
    let report = webhooks::deliver_due(outbound).await?;
    state
        .metrics
        .scheduler_rows_skipped
        .fetch_add(report.skipped, Ordering::Relaxed);
    Ok(report)
}

/// Delivers webhooks every `webhook_interval` until `stop` turns true,
/// apart from the scheduler's tick.
pub fn spawn_webhooks(state: AppState, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The first round one interval after start, not at once: what is due
        // then waits a few seconds, and a test that sets a long interval
        // runs every round itself (an early background round could take its
        // deliveries mid-test).
        let period = state.config.webhook_interval;
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(err) = deliver_webhooks(&state).await {
                        state.metrics.scheduler_steps_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = ?err, "webhook delivery round failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}

/// Ticks every `scheduler_interval` until `stop` turns true. A failing tick
/// is logged and retried next interval: the work is idempotent.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(state.config.scheduler_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(err) = tick(&state).await {
                        tracing::error!(error = ?err, "scheduler tick failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}
