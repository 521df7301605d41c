//! The target of `scripts/bench-load`: one route, `GET /whoami`, served with
//! or without the verification layer, so a load generator can compare them.
//!
//! Modes: `none` (no layer), `cached` (layer, warm 60 s cache), `uncached`
//! (layer, cache off: every request reads the database given by
//! `KEYSMITH_DATABASE_URL`), `argon2` (a naive layer that argon2id-hashes the
//! presented key on every request, for contrast), `proxy` (the gateway's
//! reverse proxy to `--upstream` with no layer: what `keysmith gateway`
//! costs before verification, for `scripts/bench-gateway`).
//!
//! `POST /mcp` answers any JSON-RPC message, so `tools/call` bodies go
//! through the layer's limits (`scripts/bench-limits`); `--limits redis`
//! shares them through `KEYSMITH_REDIS_URL` instead of this process's memory.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, http::HeaderMap, routing::get};
use clap::{Parser, ValueEnum};
use keysmith::{config::Config, db::Db, domain::people::accounts};
use keysmith_verify::{
    ApiKey, Capabilities, Peppers, SqlVerifier, SystemClock, TenantScope, VerifiedKey, Verifier,
    VerifyCode, VerifyLayer, audit::spawn_sql_audit, backend::VerdictFuture, outcome::Refusal,
};

// The same allocator as the `keysmith` binary, so the routes compare as served.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    None,
    Cached,
    Uncached,
    Argon2,
    Proxy,
}

/// The limiter of the layer. With `none` the bench key has no limits, so
/// the layer never asks its (in-memory) limiter.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Limits {
    None,
    Memory,
    Redis,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "memory")]
    limits: Limits,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value = "127.0.0.1:9100")]
    bind: std::net::SocketAddr,
    /// Verify without writing audit events (to see what auditing costs).
    #[arg(long)]
    no_audit: bool,
    /// For `argon2`: the one key it accepts.
    #[arg(long)]
    key: Option<String>,
    /// For `proxy`: the base URL requests are forwarded to.
    #[arg(long)]
    upstream: Option<String>,
    /// For `proxy`: serving threads, as `keysmith gateway --threads`.
    #[arg(long, env = "KEYSMITH_GATEWAY_THREADS", default_value_t = 0, value_parser = keysmith::connections::parse_threads)]
    threads: usize,
}

async fn mcp() -> &'static str {
    r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#
}

async fn whoami(headers: HeaderMap) -> String {
    let user = headers
        .get("x-keysmith-service-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous");
    format!("{{\"service_user\":\"{user}\"}}")
}

/// The strawman: a password hash checked on every request.
#[derive(Debug)]
struct Argon2Verifier {
    hash: String,
    identity: VerifiedKey,
}

impl Verifier for Argon2Verifier {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        Box::pin(async move {
            let presented = presented.to_owned();
            let hash = self.hash.clone();
            let ok = tokio::task::spawn_blocking(move || {
                let parsed = argon2::PasswordHash::new(&hash).expect("hash");
                argon2::PasswordVerifier::verify_password(
                    &accounts::argon2(),
                    presented.as_bytes(),
                    &parsed,
                )
                .is_ok()
            })
            .await
            .unwrap_or(false);
            Ok(if ok {
                Ok(self.identity.clone())
            } else {
                Err(Refusal {
                    code: VerifyCode::NotFound,
                    key_id: None,
                    known: None,
                })
            })
        })
    }
}

/// The gateway's proxy alone, as `keysmith gateway` serves it minus the
/// layer: on the same serving threads, each with its own proxy.
async fn serve_proxy(args: &Args) -> anyhow::Result<()> {
    let upstream = args
        .upstream
        .as_deref()
        .context("--upstream is required for proxy")?;
    let listeners = keysmith::gateway::bind(args.bind, args.threads)?;
    let apps = listeners
        .iter()
        .map(|_| keysmith::gateway::proxy(upstream, None).map(keysmith::gateway::Gateway::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let limits = keysmith::connections::ConnectionLimits::default();
    let shutdown = keysmith::startup::shutdown_signal();
    keysmith::gateway::serve_threads(listeners, apps, &limits, shutdown, async {}).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let routes = Router::new()
        .route("/whoami", get(whoami))
        .route("/mcp", axum::routing::post(mcp));
    let mut flusher = None;
    let app = match args.mode {
        Mode::Proxy => return serve_proxy(&args).await,
        Mode::None => routes,
        Mode::Argon2 => {
            let key = ApiKey::parse(
                args.key
                    .as_deref()
                    .context("--key is required for argon2")?,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let hash =
                argon2::PasswordHasher::hash_password(&accounts::argon2(), key.expose().as_bytes())
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .to_string();
            let identity = VerifiedKey {
                key_id: key.key_id().to_owned(),
                tenant_id: "bench".into(),
                tenant_slug: "bench".into(),
                service_user_id: "bench".into(),
                service_user_name: "bench".into(),
                valid_until: time::OffsetDateTime::now_utc() + time::Duration::days(1),
                scopes: Vec::new(),
                allowed: Capabilities::everything(),
                limits: Default::default(),
                token: None,
            };
            routes.layer(
                VerifyLayer::builder(Argon2Verifier { hash, identity }, TenantScope::Any)
                    .cache_ttl(Duration::ZERO)
                    .build(),
            )
        }
        Mode::Cached | Mode::Uncached => {
            let config = Config::from_env()?;
            let db = Db::connect(&config.database_url).await?;
            let peppers = Peppers::load_or_create(&config.pepper_file)?;
            let verifier =
                SqlVerifier::new(db.pool.clone(), Arc::new(peppers), Arc::new(SystemClock));
            let ttl = if matches!(args.mode, Mode::Cached) {
                Duration::from_secs(60)
            } else {
                Duration::ZERO
            };
            let mut builder = VerifyLayer::builder(verifier, TenantScope::Any).cache_ttl(ttl);
            if matches!(args.limits, Limits::Redis) {
                let url = std::env::var("KEYSMITH_REDIS_URL").context("KEYSMITH_REDIS_URL")?;
                builder = builder.limiter(
                    keysmith_verify::limit::RedisLimiter::builder()
                        .connect(&url)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                );
            }
            if !args.no_audit {
                let (sink, audit) = spawn_sql_audit(db.pool.clone(), 512, 8192);
                flusher = Some(audit);
                builder = builder.audit(sink);
            }
            routes.layer(builder.build())
        }
    };
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(keysmith::startup::shutdown_signal())
        .await?;
    if let Some(flusher) = flusher {
        let written = flusher.shutdown().await;
        // The load script reads this line to count audit events.
        eprintln!("audit_written={written}");
    }
    Ok(())
}
