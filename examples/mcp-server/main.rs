//! A demo MCP server (official Rust SDK, Streamable HTTP) behind the Keysmith
//! verification layer.
//!
//! ```sh
//! KEYSMITH_DATABASE_URL=sqlite://./keysmith-data/keysmith.db cargo run --example mcp-server -- --bind 127.0.0.1:9000
//! KEYSMITH_URL=http://127.0.0.1:8080 KEYSMITH_MANAGEMENT_KEY=ks_… cargo run --example mcp-server
//! ```

mod demo;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use keysmith::{config::Config, db::Db};
use keysmith_verify::{
    Peppers, RemoteVerifier, SqlVerifier, SystemClock, VerifyLayer, audit::spawn_sql_audit,
};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9000")]
    bind: std::net::SocketAddr,
    /// Seconds a verified key is trusted without asking again (0: off).
    #[arg(long, default_value_t = 5)]
    cache_ttl: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    keysmith::startup::init_tracing();
    let args = Args::parse();
    let ttl = Duration::from_secs(args.cache_ttl);
    let (layer, flusher) = if let Ok(url) = std::env::var("KEYSMITH_URL") {
        let key = std::env::var("KEYSMITH_MANAGEMENT_KEY")
            .context("KEYSMITH_URL needs KEYSMITH_MANAGEMENT_KEY")?;
        (
            VerifyLayer::builder(RemoteVerifier::new(&url, key))
                .cache_ttl(ttl)
                .build(),
            None,
        )
    } else {
        let config = Config::from_env()?;
        let db = Db::connect(&config.database_url).await?;
        let peppers =
            Peppers::load_or_create(&config.pepper_file).context("KEYSMITH_PEPPER_FILE")?;
        let verifier = SqlVerifier::new(db.pool.clone(), Arc::new(peppers), Arc::new(SystemClock));
        let (sink, flusher) = spawn_sql_audit(db.pool.clone(), 256, 4096);
        let layer = VerifyLayer::builder(verifier)
            .cache_ttl(ttl)
            .audit(sink)
            .build();
        if db.engine == keysmith::config::Engine::Postgres {
            // Revocations through the server reach this cache at once, not after the TTL.
            keysmith_verify::invalidation::listen_postgres(
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
