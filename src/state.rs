//! Shared application state, cheap to clone into every handler.

use std::sync::Arc;

use keysmith_verify::{
    InMemoryLimiter, Peppers, SharedClock, SqlVerifier, TenantScope, VerifyLayer,
    audit::{AuditFlusher, spawn_sql_audit},
    layer::ForwardAuth,
};

use crate::{
    config::Config, db::Db, metrics::Metrics, notify::mailer::Mailer, sessions::SessionBackend,
};

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub peppers: Arc<Peppers>,
    pub clock: SharedClock,
    pub verifier: SqlVerifier,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub mailer: Mailer,
    /// Admin UI sessions, in the same database.
    pub sessions: SessionBackend,
    /// The setup link of a database without admins, while one is outstanding.
    pub first_run: crate::domain::setup::FirstRun,
    /// GitHub's keys for signed leak reports, when configured.
    pub scanner_keys: Option<Arc<crate::domain::leaks::ScannerKeys>>,
    /// The limiter the layers share (`KEYSMITH_REDIS_URL`), read without
    /// counting to report a key's remaining budget.
    pub shared_limiter: Option<Arc<dyn keysmith_verify::Limiter>>,
    /// Permits to run argon2 at sign-in, one per core: each run takes ~19 MiB
    /// and a core for tens of milliseconds, so this bounds what an
    /// unauthenticated flood can cost. When none is free, sign-in says 503.
    pub password_slots: Arc<tokio::sync::Semaphore>,
    /// One scheduler tick at a time in this process: a tick run by hand (a
    /// test, an operator) waits for the background one in progress, so it
    /// sees that tick's work done (an email claimed there is sent, not
    /// skipped as "in flight").
    pub ticking: Arc<tokio::sync::Mutex<()>>,
    /// One webhook delivery round at a time in this process (its own task,
    /// apart from the tick; tests run rounds too).
    pub delivering_webhooks: Arc<tokio::sync::Mutex<()>>,
    /// Management-API requests of one tenant at once
    /// (`KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT`).
    pub tenant_gate: crate::connections::TenantGate,
    /// `/api/v1/forward-auth`'s judge, made at its first request.
    pub forward_auth: Arc<ForwardAuthCell>,
    /// The OAuth clients every issuer knows (stored ones and the cache of
    /// client ID metadata documents).
    pub oauth_clients: crate::domain::oauth::clients::ClientRegistry,
}

/// The forward-auth judge and its audit writer, started at the first
/// forward-auth request (commands that never serve one start no writer),
/// and the flusher `serve` drains on the way out.
#[derive(Debug, Default)]
pub struct ForwardAuthCell {
    judge: std::sync::OnceLock<ForwardAuth>,
    flusher: std::sync::Mutex<Option<AuditFlusher>>,
}

/// Rows per audit batch and the queue's bound, as the gateway's.
const FORWARD_AUTH_AUDIT: (usize, usize) = (4096, 8192);

/// How long a tenant's request waits for one of its turns before `429`:
/// long enough to absorb a short burst, short of a client's usual timeout.
const TENANT_GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl AppState {
    /// Fails on configuration that only makes sense once combined (the mailer).
    pub fn new(
        db: Db,
        peppers: Peppers,
        clock: SharedClock,
        config: Config,
    ) -> anyhow::Result<Self> {
        let peppers = Arc::new(peppers);
        let verifier = SqlVerifier::new(db.pool.clone(), peppers.clone(), clock.clone());
        let mailer = Mailer::from_config(&config)?;
        let sessions = SessionBackend::connect_lazy(&config.database_url)?;
        let scanner_keys = match &config.github_scanning_keys {
            Some(path) => Some(Arc::new(
                crate::domain::leaks::ScannerKeys::load(path)
                    .map_err(|err| err.context("KEYSMITH_GITHUB_SCANNING_KEYS"))?,
            )),
            None => None,
        };
        let shared_limiter = match &config.redis_url {
            Some(url) => Some(Arc::new(
                keysmith_verify::limit::RedisLimiter::builder()
                    .connect(url.expose())
                    .map_err(|err| anyhow::anyhow!("KEYSMITH_REDIS_URL is invalid: {err}"))?,
            ) as Arc<dyn keysmith_verify::Limiter>),
            None => None,
        };
        let oauth_clients = oauth_client_registry(&config)?;
        let tenant_gate = crate::connections::TenantGate::new(
            config.max_concurrent_requests_per_tenant,
            TENANT_GATE_WAIT,
        );
        Ok(Self {
            db,
            shared_limiter,
            peppers,
            clock,
            verifier,
            config: Arc::new(config),
            metrics: Arc::default(),
            mailer,
            sessions,
            first_run: Default::default(),
            scanner_keys,
            password_slots: Arc::new(tokio::sync::Semaphore::new(
                crate::domain::hashing::threads(),
            )),
            ticking: Arc::default(),
            delivering_webhooks: Arc::default(),
            tenant_gate,
            forward_auth: Arc::default(),
            oauth_clients,
        })
    }

    /// The forward-auth judge: the layer's, with no cache (a revocation
    /// counts from the next request, as for `POST /api/v1/verify`), the
    /// shared limiter when there is one (else this process counts), and the
    /// audit into this database.
    pub fn forward_auth(&self) -> &ForwardAuth {
        self.forward_auth.judge.get_or_init(|| {
            let (audit, flusher) = spawn_sql_audit(
                self.pool().clone(),
                FORWARD_AUTH_AUDIT.0,
                FORWARD_AUTH_AUDIT.1,
            );
            *self
                .forward_auth
                .flusher
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(flusher);
            let limiter = self
                .shared_limiter
                .clone()
                .unwrap_or_else(|| Arc::new(InMemoryLimiter::new()));
            // The tenant is the proxy's, given with each request.
            VerifyLayer::builder(self.verifier.clone(), TenantScope::Any)
                .cache_ttl(std::time::Duration::ZERO)
                .negative_ttl(std::time::Duration::ZERO)
                .shared_limiter(limiter)
                .audit(audit)
                .clock(self.clock.clone())
                .build_forward_auth()
        })
    }

    /// Writes what forward-auth's audit still has queued (at shutdown).
    pub async fn flush_forward_auth_audit(&self) {
        let flusher = self
            .forward_auth
            .flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(flusher) = flusher {
            let written = flusher.shutdown().await;
            tracing::info!(written, "forward-auth audit flushed");
        }
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.db.pool
    }
}

/// The client registry, with what the operator allows of metadata-document fetches.
fn oauth_client_registry(
    config: &Config,
) -> anyhow::Result<crate::domain::oauth::clients::ClientRegistry> {
    use anyhow::Context;
    let extra_roots_pem = match &config.oauth_client_ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| {
            format!(
                "KEYSMITH_OAUTH_CLIENT_CA_FILE: cannot read {}",
                path.display()
            )
        })?),
        None => None,
    };
    crate::domain::oauth::clients::ClientRegistry::new(
        crate::domain::oauth::clients::DocumentFetch {
            allow_private: config.oauth_client_allow_private,
            extra_roots_pem,
        },
    )
    .context("KEYSMITH_OAUTH_CLIENT_CA_FILE")
}
