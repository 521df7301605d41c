//! Everything between "process started" and "serving": logging, database, pepper
//! (and re-sealing secrets still stored in the legacy format).

use std::sync::Arc;

use anyhow::Context;
use keysmith_verify::{Peppers, SharedClock, SystemClock};
use tokio::net::TcpListener;

use crate::{build_app, config::Config, connections, db::Db, jobs, state::AppState};

/// Logs to stderr: readable text (colours only on a terminal, so redirected
/// files hold no escape codes) or, with `KEYSMITH_LOG_FORMAT=json`, one JSON
/// object per line for a log pipeline.
pub fn init_tracing() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSMITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = std::env::var("KEYSMITH_LOG_FORMAT").unwrap_or_default();
    // A second subscriber (tests start several apps in one process) is not an error.
    let _ = match format.as_str() {
        "" | "text" => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        "json" => builder.json().flatten_event(true).try_init(),
        other => {
            anyhow::bail!("KEYSMITH_LOG_FORMAT is {other:?}: use `text` (the default) or `json`")
        }
    };
    Ok(())
}

/// Connects, migrates and loads the pepper: the state every command starts from.
pub async fn prepare(config: Config) -> anyhow::Result<AppState> {
    prepare_with_clock(config, Arc::new(SystemClock)).await
}

/// [`prepare`] with another clock: the one path from configuration to state,
/// for the server and for tests that move time.
pub async fn prepare_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<AppState> {
    crate::metrics::recorder();
    crate::files::restrict_umask();
    if config.data_dir.exists() {
        crate::files::private_dir(&config.data_dir)?;
    }
    crate::files::check_pepper_file(&config.pepper_file, config.allow_readable_pepper)?;
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    let peppers = Peppers::load_or_create(&config.pepper_file)
        .context("failed to load the pepper (KEYSMITH_PEPPER_FILE)")?;
    let state = AppState::new(db, peppers, clock, config)?;
    crate::domain::sealed::reseal_legacy(state.pool(), &state.peppers)
        .await
        .context("failed to re-seal secrets stored in the legacy format")?;
    state
        .sessions
        .migrate()
        .await
        .context("failed to migrate the session store")?;
    Ok(state)
}

/// The state of a command that works on a database `serve` or `migrate`
/// prepared: it creates nothing (no database file, no directory, no pepper)
/// and migrates nothing. A missing database, one whose schema is behind this
/// binary, or a missing pepper file is refused with a message naming what
/// was looked for.
pub async fn prepare_existing(config: Config) -> anyhow::Result<AppState> {
    crate::metrics::recorder();
    let db = crate::db::existing::open(&config.database_url).await?;
    crate::files::check_pepper_file(&config.pepper_file, config.allow_readable_pepper)?;
    let text = std::fs::read_to_string(&config.pepper_file).with_context(|| {
        format!(
            "failed to read the pepper file {} (KEYSMITH_PEPPER_FILE): the one `keysmith migrate` made beside the database is needed; this command never creates one",
            config.pepper_file.display()
        )
    })?;
    let peppers =
        Peppers::parse(&text).context("the pepper file is invalid (KEYSMITH_PEPPER_FILE)")?;
    AppState::new(db, peppers, Arc::new(SystemClock), config)
}

/// Serves until `shutdown` resolves, running the scheduler alongside.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let scheduler = jobs::spawn(state.clone(), jobs_stopped.clone());
    let webhooks = jobs::spawn_webhooks(state.clone(), jobs_stopped);
    let metrics_server = match state.config.metrics_bind {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("failed to bind {addr} (KEYSMITH_METRICS_BIND)"))?;
            Some(serve_metrics(state.clone(), listener)?)
        }
        None => None,
    };
    tracing::info!(
        addr = %listener.local_addr()?,
        metrics = crate::metrics::access::metrics_exposure(&state.config),
        forward_auth = if state.config.forward_auth_token.is_some() {
            "proxies sending Keysmith-Proxy-Token"
        } else {
            "proxies on this host only (set KEYSMITH_FORWARD_AUTH_TOKEN for others)"
        },
        "keysmith listening"
    );
    let limits = state.config.connections;
    connections::serve(
        listener,
        build_app(state.clone()),
        &limits,
        |addr| addr,
        shutdown,
    )
    .await
    .context("server failed")?;
    state.flush_forward_auth_audit().await;
    let _ = stop_jobs.send(true);
    let _ = scheduler.await;
    let _ = webhooks.await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    Ok(())
}

/// Connections the separate metrics address serves at once.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// `/metrics` on its own address (`KEYSMITH_METRICS_BIND`), for a scraper on
/// a private network; the API address then answers it with 404.
pub fn serve_metrics(
    state: AppState,
    listener: TcpListener,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    // A scraper needs a connection or two; the open files are the API's.
    let limits = connections::ConnectionLimits {
        max_connections: Some(METRICS_MAX_CONNECTIONS),
        ..state.config.connections
    };
    let app = crate::routes::health::metrics_router().with_state(state);
    Ok(tokio::spawn(async move {
        let serving =
            connections::serve(listener, app, &limits, |addr| addr, std::future::pending());
        if let Err(err) = serving.await {
            tracing::error!(error = %err, "metrics server failed");
        }
    }))
}

pub use crate::connections::shutdown_signal;
