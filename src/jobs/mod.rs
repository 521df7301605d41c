//! The lifecycle clock: periodic work inside `keysmith serve`.

use tokio::{sync::watch, task::JoinHandle};

use crate::{
    domain::{form_tokens, keys, sign_in_throttle},
    notify::{reminders, sender},
    state::AppState,
};

/// Runs one scheduler tick: everything due at the state's clock. Each step is
/// idempotent and safe to run on several instances at once.
pub async fn tick(state: &AppState) -> anyhow::Result<()> {
    keys::sweep(state.pool(), state.now()).await?;
    reminders::enqueue_due(state.pool(), state.now()).await?;
    sender::deliver_due(state, &state.mailer).await?;
    purge(state).await?;
    Ok(())
}

/// Forgets what only mattered for a while: expired form tokens, sign-in
/// attempts whose window and back-off are over, expired sessions.
async fn purge(state: &AppState) -> anyhow::Result<()> {
    form_tokens::purge(state.pool(), state.now()).await?;
    sign_in_throttle::purge(state.pool(), state.now()).await?;
    state
        .sessions
        .delete_expired()
        .await
        .map_err(|err| anyhow::anyhow!("failed to delete expired sessions: {err}"))?;
    Ok(())
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
