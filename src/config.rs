//! Configuration from `KEYSMITH_*` environment variables. Every field has a
//! default that works on a laptop: an embedded SQLite file under `./keysmith-data/`.

mod database_url;
pub mod flags;
mod secret;
mod values;
pub mod variables;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;

pub use self::{
    database_url::{DatabaseUrl, Engine},
    secret::Secret,
    values::parse_trusted,
};
use self::{
    secret::forward_auth_token,
    values::{bounded, connection_limits, flag, seconds, tenant_cap},
};
use crate::connections::ConnectionLimits;

#[derive(Debug, Clone)]
pub struct Config {
    /// `KEYSMITH_DATABASE_URL`: `sqlite://…` or `postgres://…`.
    /// Default: `sqlite://<data dir>/keysmith.db`.
    pub database_url: DatabaseUrl,
    /// `KEYSMITH_BIND`: where `serve` listens. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `KEYSMITH_DATA_DIR`: the embedded database, pepper and `.eml` files. Default `./keysmith-data`.
    pub data_dir: PathBuf,
    /// `KEYSMITH_PEPPER_FILE`: the HMAC pepper(s); created (mode 0600) if absent.
    /// Default `<data dir>/pepper`.
    pub pepper_file: PathBuf,
    /// `KEYSMITH_SMTP_URL`: e.g. `smtp://host:25`; absent: emails are written as `.eml` files.
    pub smtp_url: Option<Secret>,
    /// `KEYSMITH_MAIL_FROM`: the sender of owner emails. Default `Keysmith <keysmith@localhost>`.
    pub mail_from: String,
    /// `KEYSMITH_PUBLIC_URL`: the address people use, for links in emails and
    /// to decide whether cookies are `Secure`. Default `http://<bind>`.
    pub public_url: String,
    /// `KEYSMITH_SCHEDULER_INTERVAL_SECS`: how often the lifecycle clock ticks. Default 60.
    pub scheduler_interval: Duration,
    /// `KEYSMITH_WEBHOOK_INTERVAL_SECS` (default 5): how often the webhook
    /// task, apart from the scheduler, looks for due deliveries.
    pub webhook_interval: Duration,
    /// `KEYSMITH_WEBHOOK_TIMEOUT_SECS` (default 10, at most 60): how long one
    /// delivery attempt may take, connection to answer.
    pub webhook_timeout: Duration,
    /// Days per-call audit events are kept (`KEYSMITH_AUDIT_RETENTION_DAYS`,
    /// default 90); admin actions are kept for good.
    pub audit_retention_days: i64,
    /// `KEYSMITH_GITHUB_SCANNING_KEYS`: GitHub's public key set (the JSON its
    /// key endpoint serves), to accept leak reports at
    /// `POST /api/v1/secret-scanning/github`. Absent: the endpoint is off.
    pub github_scanning_keys: Option<PathBuf>,
    /// `KEYSMITH_REDIS_URL`: the Redis the verification layers share limits
    /// through; lets `POST /api/v1/verify` report the remaining budget.
    /// Absent: limits are per layer instance and `remaining` is `null`.
    pub redis_url: Option<Secret>,
    /// `KEYSMITH_METRICS_TOKEN`: when set, `/metrics` answers only
    /// `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// `KEYSMITH_FORWARD_AUTH_TOKEN`: what a reverse proxy sends as
    /// `Keysmith-Proxy-Token` to ask `/api/v1/forward-auth`. Absent: only
    /// loopback peers are answered.
    pub forward_auth_token: Option<Secret>,
    /// `KEYSMITH_METRICS_BIND`: when set, `/metrics` is served on this
    /// address only (e.g. a private interface), not beside the API.
    pub metrics_bind: Option<SocketAddr>,
    /// `KEYSMITH_TRUSTED_PROXIES`: reverse proxies (CIDRs or addresses,
    /// comma-separated) whose `Forwarded`/`X-Forwarded-For` names the client.
    /// Default: none; the peer address is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `KEYSMITH_ALLOW_READABLE_PEPPER=1`: start even when the pepper file is
    /// readable by group or others (warns). Default: refuse to start.
    pub allow_readable_pepper: bool,
    /// `KEYSMITH_REQUIRE_TOTP=1`: every admin account must use a second
    /// factor (TOTP). Default: only where a tenant requires it.
    pub require_totp: bool,
    /// `KEYSMITH_WEBHOOK_ALLOW_PRIVATE=1`: webhooks may target loopback,
    /// private, link-local and unique-local addresses. Default: only global
    /// unicast.
    pub webhook_allow_private: bool,
    /// `KEYSMITH_OAUTH_CLIENT_ALLOW_PRIVATE=1`: client ID metadata documents
    /// may be fetched from loopback and private addresses. Default: only
    /// global unicast, as webhooks.
    pub oauth_client_allow_private: bool,
    /// `KEYSMITH_OAUTH_CLIENT_CA_FILE`: PEM roots trusted, besides the
    /// Mozilla set, when fetching client ID metadata documents.
    pub oauth_client_ca_file: Option<PathBuf>,
    /// `KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT` (default 1,000): stored OAuth
    /// clients (dynamically registered and pre-registered) per tenant:
    /// registration is open to anyone, so the cap bounds what it can fill.
    pub max_oauth_clients_per_tenant: i64,
    /// `KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS` (default 24, at most a year): a
    /// dynamically registered OAuth client with no grant this long after
    /// its registration is deleted by the scheduler.
    pub oauth_unused_client_hours: i64,
    /// `KEYSMITH_MAX_WEBHOOKS_PER_TENANT` (default 10): endpoints one tenant
    /// may have; each is delivered to, so the cap bounds what one tenant
    /// asks of the delivery task.
    pub max_webhooks_per_tenant: i64,
    /// `KEYSMITH_MAX_SERVICE_USERS_PER_TENANT` (default 10,000): service
    /// users one tenant may have; bounds its lists and the pages that read them.
    pub max_service_users_per_tenant: i64,
    /// `KEYSMITH_MAX_KEYS_PER_TENANT` (default 50,000): working (active and
    /// rotating) keys one tenant may have, created or rotated in.
    pub max_keys_per_tenant: i64,
    /// `KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT` (default 4): management-API
    /// requests of one tenant served at once; the next wait up to 2 s, then
    /// `429`. Keeps one tenant from holding every database connection.
    pub max_concurrent_requests_per_tenant: usize,
    /// How `serve` and `gateway` hold client connections:
    /// `KEYSMITH_HEADER_TIMEOUT_SECS` (default 15), `KEYSMITH_BODY_TIMEOUT_SECS`
    /// (default 60), `KEYSMITH_MAX_CONNECTIONS` (default half the open-file
    /// limit, at most 10,000).
    pub connections: ConnectionLimits,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let data_dir =
            PathBuf::from(var("KEYSMITH_DATA_DIR").unwrap_or_else(|| "./keysmith-data".into()));
        let database_url = database_url(&var, &data_dir)?;
        let bind: SocketAddr = var("KEYSMITH_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("KEYSMITH_BIND must be an address like 127.0.0.1:8080")?;
        let positive = "a positive number of seconds";
        Ok(Self {
            database_url,
            pepper_file: var("KEYSMITH_PEPPER_FILE")
                .map_or_else(|| data_dir.join("pepper"), PathBuf::from),
            public_url: public_url(&var, bind)?,
            bind,
            data_dir,
            smtp_url: var("KEYSMITH_SMTP_URL").map(Secret),
            mail_from: var("KEYSMITH_MAIL_FROM")
                .unwrap_or_else(|| "Keysmith <keysmith@localhost>".into()),
            scheduler_interval: seconds(
                &var,
                "KEYSMITH_SCHEDULER_INTERVAL_SECS",
                60,
                1..=u64::MAX,
                positive,
            )?,
            webhook_interval: seconds(
                &var,
                "KEYSMITH_WEBHOOK_INTERVAL_SECS",
                5,
                1..=u64::MAX,
                positive,
            )?,
            webhook_timeout: seconds(
                &var,
                "KEYSMITH_WEBHOOK_TIMEOUT_SECS",
                10,
                1..=60,
                "a whole number of seconds from 1 to 60",
            )?,
            audit_retention_days: bounded(
                &var,
                "KEYSMITH_AUDIT_RETENTION_DAYS",
                90,
                1..=36_500,
                "a whole number of days from 1 to 36500",
            )?,
            max_webhooks_per_tenant: bounded(
                &var,
                "KEYSMITH_MAX_WEBHOOKS_PER_TENANT",
                10,
                1..=1_000,
                "a whole number from 1 to 1000",
            )?,
            max_service_users_per_tenant: tenant_cap(
                &var,
                "KEYSMITH_MAX_SERVICE_USERS_PER_TENANT",
                10_000,
                1_000_000,
            )?,
            max_keys_per_tenant: tenant_cap(
                &var,
                "KEYSMITH_MAX_KEYS_PER_TENANT",
                50_000,
                10_000_000,
            )?,
            max_oauth_clients_per_tenant: tenant_cap(
                &var,
                "KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT",
                1_000,
                1_000_000,
            )?,
            oauth_unused_client_hours: tenant_cap(
                &var,
                "KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS",
                24,
                8_760,
            )?,
            max_concurrent_requests_per_tenant: usize::try_from(tenant_cap(
                &var,
                "KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT",
                4,
                64,
            )?)?,
            connections: connection_limits(&var)?,
            trusted_proxies: parse_trusted(&var("KEYSMITH_TRUSTED_PROXIES").unwrap_or_default())
                .context("KEYSMITH_TRUSTED_PROXIES is invalid")?,
            oauth_client_ca_file: var("KEYSMITH_OAUTH_CLIENT_CA_FILE").map(PathBuf::from),
            oauth_client_allow_private: flag(&var, "KEYSMITH_OAUTH_CLIENT_ALLOW_PRIVATE"),
            github_scanning_keys: var("KEYSMITH_GITHUB_SCANNING_KEYS").map(PathBuf::from),
            redis_url: var("KEYSMITH_REDIS_URL").map(Secret),
            metrics_token: var("KEYSMITH_METRICS_TOKEN").map(Secret),
            forward_auth_token: forward_auth_token(var("KEYSMITH_FORWARD_AUTH_TOKEN"))?,
            metrics_bind: var("KEYSMITH_METRICS_BIND")
                .map(|raw| {
                    raw.parse()
                        .context("KEYSMITH_METRICS_BIND must be an address like 127.0.0.1:9090")
                })
                .transpose()?,
            require_totp: flag(&var, "KEYSMITH_REQUIRE_TOTP"),
            webhook_allow_private: flag(&var, "KEYSMITH_WEBHOOK_ALLOW_PRIVATE"),
            allow_readable_pepper: flag(&var, "KEYSMITH_ALLOW_READABLE_PEPPER"),
        })
    }

    /// Whether the public URL is https: cookies are then `Secure` and HSTS is sent.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `KEYSMITH_DATABASE_URL`, by default an SQLite file in the data directory.
fn database_url(
    var: &impl Fn(&str) -> Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<DatabaseUrl> {
    let default = || {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("keysmith.db").display()
        )
    };
    DatabaseUrl::parse(&var("KEYSMITH_DATABASE_URL").unwrap_or_else(default))
        .context("KEYSMITH_DATABASE_URL is invalid")
}

/// `KEYSMITH_PUBLIC_URL` without its trailing `/`, by default `http://<bind>`.
fn public_url(var: &impl Fn(&str) -> Option<String>, bind: SocketAddr) -> anyhow::Result<String> {
    let public_url = var("KEYSMITH_PUBLIC_URL")
        .unwrap_or_else(|| format!("http://{bind}"))
        .trim_end_matches('/')
        .to_owned();
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        anyhow::bail!("KEYSMITH_PUBLIC_URL must start with http:// or https://");
    }
    Ok(public_url)
}

#[cfg(test)]
mod tests;
