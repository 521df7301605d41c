//! What the gateway verifies against, where its audit and MCP session
//! bindings go: the database (default) or a Keysmith server (`--verify-url`).
//! Built from exactly what the mode needs: no migrations, no mailer, no
//! admin sessions, and in remote mode no database at all.

use std::sync::Arc;

use anyhow::Context;
use keysmith_verify::{
    SqlVerifier, SystemClock, TenantScope, Verifier, VerifyLayer, VerifyLayerBuilder,
    audit::{AuditFlusher, AuditSink, RemoteAuditOptions, spawn_remote_audit, spawn_sql_audit},
    backend::invalidation,
    session::{RedisSessions, SqlSessions},
};

use super::{GatewayOptions, database, remote};
use crate::config::{Config, Engine};

/// Where keys are verified.
#[derive(Debug, Clone)]
pub enum VerifySource {
    /// The Keysmith database of `KEYSMITH_DATABASE_URL`.
    Database,
    /// A Keysmith server (`--verify-url`).
    Remote(remote::RemoteSettings),
}

/// Audit queue between the layer and the writer.
const AUDIT_QUEUE: usize = 8192;

/// Where bindings of MCP sessions are kept.
enum SessionStoreChoice {
    Sql(SqlSessions),
    Redis(RedisSessions),
    /// This process only.
    Memory,
}

/// The parts of the layer that depend on the mode.
pub struct Backend {
    verifier: Arc<dyn Verifier>,
    sink: AuditSink,
    pub flusher: AuditFlusher,
    sessions: SessionStoreChoice,
    /// PostgreSQL: the URL to LISTEN on for key changes.
    listen_url: Option<String>,
}

impl Backend {
    pub async fn start(config: &Config, options: &GatewayOptions) -> anyhow::Result<Self> {
        match &options.verify {
            VerifySource::Database => Self::database(config, options).await,
            VerifySource::Remote(settings) => Self::remote(settings, options).await,
        }
    }

    async fn database(config: &Config, options: &GatewayOptions) -> anyhow::Result<Self> {
        let (db, peppers) = database::open(config, &options.tenant).await?;
        let verifier = SqlVerifier::new(db.pool.clone(), Arc::new(peppers), Arc::new(SystemClock));
        // Batches as large as half the queue: at light load a batch is what
        // arrived during the writer's linger, but when a commit slows (each
        // waits on its WAL fsync, which a VACUUM's or a checkpoint's writes
        // slow), the next takes all that queued meanwhile. Capped at 256, a
        // commit slower than 256 events' worth of requests (19 ms at 13.7k
        // req/s) left the writer behind for good, and the full queue held every
        // request (soak, BENCHMARKS.md).
        let (sink, flusher) = spawn_sql_audit(db.pool.clone(), AUDIT_QUEUE / 2, AUDIT_QUEUE);
        tracing::info!(database = %config.database_url, "verifying keys against the database");
        Ok(Self {
            verifier: Arc::new(verifier),
            sink,
            flusher,
            // Every gateway on this database knows every session's key.
            sessions: SessionStoreChoice::Sql(SqlSessions::new(db.pool.clone())),
            listen_url: (db.engine == Engine::Postgres)
                .then(|| config.database_url.expose().to_owned()),
        })
    }

    async fn remote(
        settings: &remote::RemoteSettings,
        options: &GatewayOptions,
    ) -> anyhow::Result<Self> {
        let TenantScope::Only(tenant) = &options.tenant else {
            anyhow::bail!(
                "--any-tenant needs the database: a gateway with --verify-url serves its management key's tenant (--tenant <slug>)"
            );
        };
        let verifier = settings.verifier()?;
        remote::check_key_tenant(&verifier, &settings.key, tenant).await?;
        let spool = RemoteAuditOptions {
            spool_capacity: options.audit_spool,
            ..RemoteAuditOptions::default()
        };
        let (sink, flusher) = spawn_remote_audit(&verifier, AUDIT_QUEUE, spool);
        let sessions = match &options.redis_url {
            Some(url) => SessionStoreChoice::Redis(
                RedisSessions::connect(&url.0).context("KEYSMITH_REDIS_URL is invalid")?,
            ),
            None => SessionStoreChoice::Memory,
        };
        tracing::info!(
            server = settings.url,
            cache_ttl = ?options.cache_ttl,
            audit_spool = options.audit_spool,
            sessions = if options.redis_url.is_some() { "redis" } else { "this process" },
            "verifying keys through the keysmith server; no database"
        );
        Ok(Self {
            verifier: Arc::new(verifier),
            sink,
            flusher,
            sessions,
            listen_url: None,
        })
    }

    /// The layer's builder for `scope`, with this backend's verifier, audit
    /// and session store (taken: call it once).
    pub fn layer_builder(&mut self, scope: TenantScope) -> VerifyLayerBuilder {
        let builder =
            VerifyLayer::builder(Arc::clone(&self.verifier), scope).audit(self.sink.clone());
        match std::mem::replace(&mut self.sessions, SessionStoreChoice::Memory) {
            SessionStoreChoice::Sql(store) => builder.sessions(store),
            SessionStoreChoice::Redis(store) => builder.sessions(store),
            SessionStoreChoice::Memory => builder,
        }
    }

    /// PostgreSQL: revocations made through any server instance reach the
    /// layer's cache at once (held while the gateway runs).
    pub async fn listen(
        &self,
        layer: &VerifyLayer,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        match &self.listen_url {
            Some(url) => Ok(Some(
                invalidation::listen_postgres(url, layer.clone())
                    .await
                    .context("failed to listen for key changes")?,
            )),
            None => Ok(None),
        }
    }
}
