//! A demo MCP server (official Rust SDK, Streamable HTTP) behind the Keysmith
//! verification layer.
//!
//! ```sh
//! KEYSMITH_DATABASE_URL=sqlite://./keysmith-data/keysmith.db cargo run --example mcp-server -- --tenant acme --bind 127.0.0.1:9000
//! # or ask a Keysmith server, with a key of scope keysmith:verify:
//! KEYSMITH_URL=https://keysmith.internal KEYSMITH_MANAGEMENT_KEY=ks_… cargo run --example mcp-server -- --tenant acme
//! ```

mod demo;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use keysmith::{config::Config, db::Db};
use keysmith_verify::{
    InMemoryLimiter, Limiter, Peppers, RemoteVerifier, SqlVerifier, SystemClock, TenantScope,
    VerifyLayer, audit::spawn_sql_audit, limit::RedisLimiter,
};

#[derive(Debug, Parser)]
#[command(group(clap::ArgGroup::new("tenant_scope").required(true).args(["tenant", "any_tenant"])))]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9000")]
    bind: std::net::SocketAddr,
    /// Seconds a verified key is trusted without asking again (0: off).
    #[arg(long, default_value_t = 5)]
    cache_ttl: u64,
    /// Only keys of this tenant (slug) pass.
    #[arg(
        long,
        required_unless_present = "any_tenant",
        conflicts_with = "any_tenant"
    )]
    tenant: Option<String>,
    /// Keys of every tenant pass (a server shared by all tenants).
    #[arg(long)]
    any_tenant: bool,
    /// PEM root certificates to trust for an https KEYSMITH_URL.
    #[arg(long, env = "KEYSMITH_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    keysmith::startup::init_tracing()?;
    keysmith_verify::tls::install_default_provider();
    let args = Args::parse();
    let ttl = Duration::from_secs(args.cache_ttl);
    let tenant = args.tenant.map_or(TenantScope::Any, TenantScope::Only);
    // Shared by every instance on one Redis; without it, counted here only.
    let limiter: Arc<dyn Limiter> = match std::env::var("KEYSMITH_REDIS_URL") {
        Ok(url) => Arc::new(
            RedisLimiter::builder()
                .connect(&url)
                .context("KEYSMITH_REDIS_URL is invalid")?,
        ),
        Err(_) => Arc::new(InMemoryLimiter::new()),
    };
    let (layer, flusher) = if let Ok(url) = std::env::var("KEYSMITH_URL") {
        let key = std::env::var("KEYSMITH_MANAGEMENT_KEY")
            .context("KEYSMITH_URL needs KEYSMITH_MANAGEMENT_KEY")?;
        let roots = match &args.ca_file {
            Some(path) => Some(std::fs::read(path).context("KEYSMITH_CA_FILE")?),
            None => None,
        };
        let verifier = RemoteVerifier::with_roots(&url, key, roots.as_deref())?;
        (
            VerifyLayer::builder(verifier, tenant)
                .cache_ttl(ttl)
                .shared_limiter(limiter)
                .build(),
            None,
        )
    } else {
        let config = Config::from_env()?;
        let db = Db::connect(&config.database_url).await?;
        let peppers =
            Peppers::load_or_create(&config.pepper_file).context("KEYSMITH_PEPPER_FILE")?;
        let verifier = SqlVerifier::new(db.pool.clone(), Arc::new(peppers), Arc::new(SystemClock));
        // As the gateway: a batch may take the whole queue after a slow commit.
        let (sink, flusher) = spawn_sql_audit(db.pool.clone(), 4096, 8192);
        let layer = VerifyLayer::builder(verifier, tenant)
            .cache_ttl(ttl)
            .audit(sink)
            .shared_limiter(limiter)
            .build();
        if db.engine == keysmith::config::Engine::Postgres {
            // Revocations through the server reach this cache at once, not after the TTL.
            keysmith_verify::backend::invalidation::listen_postgres(
                config.database_url.expose(),
                layer.clone(),
            )
            .await?;
        }
        (layer, Some(flusher))
    };
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    tracing::info!(addr = %args.bind, "demo MCP server on /mcp");
    axum::serve(listener, demo::router(layer))
        .with_graceful_shutdown(keysmith::startup::shutdown_signal())
        .await?;
    if let Some(flusher) = flusher {
        let written = flusher.shutdown().await;
        tracing::info!(written, "audit flushed");
    }
    Ok(())
}
