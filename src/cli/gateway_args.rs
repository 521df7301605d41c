//! `keysmith gateway`'s command line: the one command that never goes
//! through the server's start-up (no migrations, mailer or admin sessions).

use std::time::Duration;

use keysmith_verify::TenantScope;

use crate::{
    config::{Config, Secret},
    gateway::{
        AllowedOrigin, GatewayOptions, RedisUrl, VerifySource,
        remote::{RemoteSettings, VERIFY_KEY_VAR},
    },
};

/// The verification layer in front of any HTTP or MCP server.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("tenant_scope").required(true).args(["tenant", "any_tenant"])))]
pub struct GatewayArgs {
    /// Where verified requests go, e.g. http://127.0.0.1:9000 or https://…
    #[arg(long)]
    upstream: String,
    #[arg(long, default_value = "127.0.0.1:8787")]
    bind: std::net::SocketAddr,
    /// Only keys of this tenant (slug) pass; any other key is 401.
    #[arg(
        long,
        required_unless_present = "any_tenant",
        conflicts_with = "any_tenant"
    )]
    tenant: Option<String>,
    /// Let keys of EVERY tenant pass. Only for an upstream shared by all
    /// tenants that tells them apart itself by `x-keysmith-tenant`.
    #[arg(long)]
    any_tenant: bool,
    /// The upstream is not an MCP server: bodies are not read and no tool
    /// allowlist is enforced.
    #[arg(long)]
    no_mcp: bool,
    /// PEM file of root certificates to trust for an https upstream,
    /// besides the Mozilla roots.
    #[arg(long, env = "KEYSMITH_UPSTREAM_CA_FILE")]
    upstream_ca: Option<std::path::PathBuf>,
    /// `redis://…`: share keys' rate limits and quotas (and, with
    /// --verify-url, MCP session bindings) with every gateway using this
    /// Redis. Absent: counted in this process only.
    #[arg(long, env = "KEYSMITH_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// A browser origin allowed besides the gateway's own, e.g.
    /// https://app.example.com (repeatable; the variable takes a comma
    /// list). A request whose Origin is neither is 403.
    #[arg(
        long = "allowed-origin",
        env = "KEYSMITH_GATEWAY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = AllowedOrigin::parse
    )]
    allowed_origins: Vec<AllowedOrigin>,
    /// Verify keys through this Keysmith server (its root, e.g.
    /// https://keys.example) instead of the database, with the management
    /// key of scope verify in KEYSMITH_VERIFY_KEY; audit goes back to it.
    #[arg(long, env = "KEYSMITH_VERIFY_URL")]
    verify_url: Option<String>,
    /// PEM file of root certificates to trust for --verify-url (a private
    /// CA), besides the Mozilla roots.
    #[arg(long, env = "KEYSMITH_VERIFY_CA_FILE", requires = "verify_url")]
    verify_ca: Option<std::path::PathBuf>,
    /// Allow an http:// --verify-url to a host that is not loopback (keys
    /// then cross the network in clear text).
    #[arg(long, requires = "verify_url")]
    allow_plain_http: bool,
    /// Seconds a verified key is trusted before the backend is asked again:
    /// the most a revocation made elsewhere takes to reach this gateway.
    #[arg(long, env = "KEYSMITH_VERIFY_CACHE_TTL_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    verify_cache_ttl: u64,
    /// With --verify-url: audit events kept while the server is
    /// unreachable; past that the oldest are dropped (and counted).
    #[arg(long, env = "KEYSMITH_AUDIT_SPOOL_EVENTS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    audit_spool: u64,
    /// Make the gateway an OAuth protected resource at this public URL
    /// (e.g. https://mcp.example.com/mcp): RFC 9728 metadata naming the
    /// tenant's issuer at KEYSMITH_PUBLIC_URL, and access tokens bound to
    /// this URL accepted besides keys. Needs --tenant.
    #[arg(
        long,
        conflicts_with = "any_tenant",
        value_parser = crate::gateway::parse_resource
    )]
    resource: Option<String>,
    /// Serving threads, each with its own runtime, its own listener on
    /// --bind (SO_REUSEPORT) and its own upstream connections, so a
    /// connection stays on one thread; 0: one per core.
    #[arg(long, env = "KEYSMITH_GATEWAY_THREADS", default_value_t = 0, value_parser = crate::connections::parse_threads)]
    threads: usize,
}

impl GatewayArgs {
    pub async fn run(self, config: Config) -> anyhow::Result<()> {
        let verify = match self.verify_url {
            None => VerifySource::Database,
            Some(url) => {
                // Never a flag: a command line is visible to every user of the host.
                let key = std::env::var(VERIFY_KEY_VAR)
                    .ok()
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--verify-url needs {VERIFY_KEY_VAR}: a management key of scope verify (keysmith management-key create --tenant <slug> --owner-email <e> --scope verify)"
                        )
                    })?;
                VerifySource::Remote(RemoteSettings {
                    url,
                    key: Secret(key.trim().to_owned()),
                    ca_file: self.verify_ca,
                    allow_plain_http: self.allow_plain_http,
                })
            }
        };
        let options = GatewayOptions {
            upstream: self.upstream,
            bind: self.bind,
            // clap makes --tenant and --any-tenant exclusive, one required.
            tenant: self.tenant.map_or(TenantScope::Any, TenantScope::Only),
            mcp: !self.no_mcp,
            upstream_ca: self.upstream_ca,
            redis_url: self.redis_url.map(RedisUrl),
            allowed_origins: self.allowed_origins,
            verify,
            cache_ttl: Duration::from_secs(self.verify_cache_ttl),
            audit_spool: usize::try_from(self.audit_spool).unwrap_or(usize::MAX),
            resource: self.resource,
            threads: self.threads,
        };
        crate::gateway::run(config, options).await
    }
}
