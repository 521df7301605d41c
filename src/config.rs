//! Configuration from `KEYSMITH_*` environment variables. Every field has a
//! default that works on a laptop: an embedded SQLite file under `./keysmith-data/`.

pub mod flags;
pub mod variables;

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;

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
        let database_url = DatabaseUrl::parse(&var("KEYSMITH_DATABASE_URL").unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("keysmith.db").display()
            )
        }))
        .context("KEYSMITH_DATABASE_URL is invalid")?;
        let bind: SocketAddr = var("KEYSMITH_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("KEYSMITH_BIND must be an address like 127.0.0.1:8080")?;
        let pepper_file =
            var("KEYSMITH_PEPPER_FILE").map_or_else(|| data_dir.join("pepper"), PathBuf::from);
        let public_url = var("KEYSMITH_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            anyhow::bail!("KEYSMITH_PUBLIC_URL must start with http:// or https://");
        }
        let scheduler_interval = match var("KEYSMITH_SCHEDULER_INTERVAL_SECS") {
            None => Duration::from_secs(60),
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => anyhow::bail!(
                    "KEYSMITH_SCHEDULER_INTERVAL_SECS must be a positive number of seconds"
                ),
            },
        };
        let webhook_interval = match var("KEYSMITH_WEBHOOK_INTERVAL_SECS") {
            None => Duration::from_secs(5),
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => anyhow::bail!(
                    "KEYSMITH_WEBHOOK_INTERVAL_SECS must be a positive number of seconds"
                ),
            },
        };
        let webhook_timeout = match var("KEYSMITH_WEBHOOK_TIMEOUT_SECS") {
            None => Duration::from_secs(10),
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) if (1..=60).contains(&secs) => Duration::from_secs(secs),
                _ => anyhow::bail!(
                    "KEYSMITH_WEBHOOK_TIMEOUT_SECS must be a whole number of seconds from 1 to 60"
                ),
            },
        };
        let audit_retention_days = match var("KEYSMITH_AUDIT_RETENTION_DAYS") {
            None => 90,
            Some(raw) => match raw.parse::<i64>() {
                Ok(days) if (1..=36_500).contains(&days) => days,
                _ => anyhow::bail!(
                    "KEYSMITH_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500"
                ),
            },
        };
        let max_webhooks_per_tenant = match var("KEYSMITH_MAX_WEBHOOKS_PER_TENANT") {
            None => 10,
            Some(raw) => match raw.parse::<i64>() {
                Ok(cap) if (1..=1_000).contains(&cap) => cap,
                _ => anyhow::bail!(
                    "KEYSMITH_MAX_WEBHOOKS_PER_TENANT must be a whole number from 1 to 1000"
                ),
            },
        };
        let max_service_users_per_tenant = tenant_cap(
            &var,
            "KEYSMITH_MAX_SERVICE_USERS_PER_TENANT",
            10_000,
            1_000_000,
        )?;
        let max_keys_per_tenant =
            tenant_cap(&var, "KEYSMITH_MAX_KEYS_PER_TENANT", 50_000, 10_000_000)?;
        let max_oauth_clients_per_tenant = tenant_cap(
            &var,
            "KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT",
            1_000,
            1_000_000,
        )?;
        let oauth_unused_client_hours =
            tenant_cap(&var, "KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS", 24, 8_760)?;
        let max_concurrent_requests_per_tenant = usize::try_from(tenant_cap(
            &var,
            "KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT",
            4,
            64,
        )?)?;
        let connections = connection_limits(&var)?;
        let trusted_proxies = parse_trusted(&var("KEYSMITH_TRUSTED_PROXIES").unwrap_or_default())
            .context("KEYSMITH_TRUSTED_PROXIES is invalid")?;
        Ok(Self {
            database_url,
            bind,
            data_dir,
            pepper_file,
            smtp_url: var("KEYSMITH_SMTP_URL").map(Secret),
            mail_from: var("KEYSMITH_MAIL_FROM")
                .unwrap_or_else(|| "Keysmith <keysmith@localhost>".into()),
            public_url,
            scheduler_interval,
            webhook_interval,
            webhook_timeout,
            audit_retention_days,
            max_webhooks_per_tenant,
            max_service_users_per_tenant,
            max_keys_per_tenant,
            max_oauth_clients_per_tenant,
            oauth_unused_client_hours,
            oauth_client_ca_file: var("KEYSMITH_OAUTH_CLIENT_CA_FILE").map(PathBuf::from),
            oauth_client_allow_private: matches!(
                var("KEYSMITH_OAUTH_CLIENT_ALLOW_PRIVATE").as_deref(),
                Some("1" | "true" | "yes")
            ),
            max_concurrent_requests_per_tenant,
            github_scanning_keys: var("KEYSMITH_GITHUB_SCANNING_KEYS").map(PathBuf::from),
            redis_url: var("KEYSMITH_REDIS_URL").map(Secret),
            metrics_token: var("KEYSMITH_METRICS_TOKEN")
                .filter(|t| !t.is_empty())
                .map(Secret),
            forward_auth_token: forward_auth_token(var("KEYSMITH_FORWARD_AUTH_TOKEN"))?,
            metrics_bind: var("KEYSMITH_METRICS_BIND")
                .map(|raw| {
                    raw.parse()
                        .context("KEYSMITH_METRICS_BIND must be an address like 127.0.0.1:9090")
                })
                .transpose()?,
            trusted_proxies,
            require_totp: matches!(
                var("KEYSMITH_REQUIRE_TOTP").as_deref(),
                Some("1" | "true" | "yes")
            ),
            webhook_allow_private: matches!(
                var("KEYSMITH_WEBHOOK_ALLOW_PRIVATE").as_deref(),
                Some("1" | "true" | "yes")
            ),
            allow_readable_pepper: matches!(
                var("KEYSMITH_ALLOW_READABLE_PEPPER").as_deref(),
                Some("1" | "true" | "yes")
            ),
            connections,
        })
    }

    /// Whether the public URL is https: cookies are then `Secure` and HSTS is sent.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Most seconds a connection timeout may be set to (a day): a larger
/// value is a typo, and would leave connections held as if there were none.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Most connections `KEYSMITH_MAX_CONNECTIONS` may allow.
const MAX_CONNECTIONS: usize = 1_000_000;

/// A per-tenant cap read from `name`: a whole number from 1 to `max`, or `default`.
fn tenant_cap(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: i64,
    max: i64,
) -> anyhow::Result<i64> {
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(cap) if (1..=max).contains(&cap) => Ok(cap),
            _ => anyhow::bail!("{name} must be a whole number from 1 to {max}"),
        },
    }
}

fn connection_limits(var: &impl Fn(&str) -> Option<String>) -> anyhow::Result<ConnectionLimits> {
    let defaults = ConnectionLimits::default();
    let secs = |name: &str, default: Duration| match var(name) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u64>() {
            Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => Ok(Duration::from_secs(secs)),
            _ => Err(anyhow::anyhow!(
                "{name} must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}"
            )),
        },
    };
    let max_connections = match var("KEYSMITH_MAX_CONNECTIONS") {
        None => None,
        Some(raw) => match raw.parse::<usize>() {
            Ok(cap) if (1..=MAX_CONNECTIONS).contains(&cap) => Some(cap),
            _ => anyhow::bail!(
                "KEYSMITH_MAX_CONNECTIONS must be a whole number from 1 to {MAX_CONNECTIONS}"
            ),
        },
    };
    Ok(ConnectionLimits {
        header_timeout: secs("KEYSMITH_HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
        body_timeout: secs("KEYSMITH_BODY_TIMEOUT_SECS", defaults.body_timeout)?,
        max_connections,
    })
}

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database URL whose `Debug`/`Display` hide the password.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    engine: Engine,
    /// Query parameters dropped because the driver does not read them.
    ignored: Vec<String>,
}

/// The query parameters sqlx's PostgreSQL driver reads. It logs any other
/// *with its value* (`sslpassword=…` included), so the others are dropped
/// before it sees the URL, and only their names are reported.
const POSTGRES_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// `url` without the query parameters the driver would ignore (and log),
/// and their names; unchanged when there are none or it does not parse.
fn without_unread_params(url: &str) -> (String, Vec<String>) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_owned(), Vec::new());
    };
    type Pairs = Vec<(String, String)>;
    let (kept, ignored): (Pairs, Pairs) = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .partition(|(k, _)| POSTGRES_PARAMS.contains(&k.as_str()));
    if ignored.is_empty() {
        return (url.to_owned(), Vec::new());
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    (parsed.into(), ignored.into_iter().map(|(k, _)| k).collect())
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            anyhow::bail!("expected a sqlite:// or postgres:// URL");
        };
        let (url, ignored) = match engine {
            Engine::Postgres => without_unread_params(url),
            Engine::Sqlite => (url.to_owned(), Vec::new()),
        };
        Ok(Self {
            url,
            engine,
            ignored,
        })
    }

    /// Names of query parameters dropped because the driver does not read them.
    pub fn ignored_params(&self) -> &[String] {
        &self.ignored
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with its password, and any query parameter that may hold a
    /// secret (`password`, `sslpassword`, …), replaced by `***`. Parsed as a
    /// URL, not split by hand: a password may contain `@`, `:` or `/`.
    pub fn redacted(&self) -> String {
        if self.engine == Engine::Sqlite {
            return self.url.clone();
        }
        // Never echo what we could not take apart: it may be all secret. An
        // `@` in the path means an unencoded password was cut short at a `/`
        // (`user:p@ss/word@host`), leaving its tail in the path.
        let hidden = || "postgres://[unparseable URL hidden]".to_owned();
        let Ok(mut parsed) = url::Url::parse(&self.url) else {
            return hidden();
        };
        if parsed.path().contains('@') || parsed.fragment().is_some() {
            return hidden();
        }
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        if parsed.query().is_some() {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    let secret = ["pass", "secret", "token"]
                        .iter()
                        .any(|s| lower.contains(s));
                    let value = if secret {
                        "***".into()
                    } else {
                        value.into_owned()
                    };
                    (key.into_owned(), value)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        parsed.to_string()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A configuration value that may carry credentials (the SMTP URL).
#[derive(Clone)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Shortest `KEYSMITH_FORWARD_AUTH_TOKEN` accepted: it is all that stands
/// between the internet and a key-checking oracle that writes audit rows.
const MIN_FORWARD_AUTH_TOKEN_LEN: usize = 32;

fn forward_auth_token(raw: Option<String>) -> anyhow::Result<Option<Secret>> {
    match raw.filter(|t| !t.is_empty()) {
        Some(token) if token.len() < MIN_FORWARD_AUTH_TOKEN_LEN => anyhow::bail!(
            "KEYSMITH_FORWARD_AUTH_TOKEN must be at least {MIN_FORWARD_AUTH_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
        ),
        token => Ok(token.map(Secret)),
    }
}

/// Parses `KEYSMITH_TRUSTED_PROXIES`: CIDRs or single addresses, comma-separated.
pub fn parse_trusted(raw: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!("{item:?} is not a CIDR like 10.0.0.0/8 or an address")
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.database_url.engine(), Engine::Sqlite);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert!(c.pepper_file.ends_with("pepper"));
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert!(c.smtp_url.is_none());
    }

    #[test]
    fn errors_name_the_variable() {
        let err = config(&[("KEYSMITH_BIND", "nope")]).expect_err("bad bind");
        assert!(err.to_string().contains("KEYSMITH_BIND"));
        let err = config(&[("KEYSMITH_TRUSTED_PROXIES", "10.0.0.0/33")]).expect_err("bad cidr");
        assert!(err.to_string().contains("KEYSMITH_TRUSTED_PROXIES"));
        let err = config(&[("KEYSMITH_DATABASE_URL", "mysql://x")]).expect_err("bad db");
        assert!(err.to_string().contains("KEYSMITH_DATABASE_URL"));
        for (name, value) in [
            ("KEYSMITH_HEADER_TIMEOUT_SECS", "0"),
            ("KEYSMITH_BODY_TIMEOUT_SECS", "1.5"),
            ("KEYSMITH_BODY_TIMEOUT_SECS", "86401"),
            ("KEYSMITH_MAX_CONNECTIONS", "0"),
            ("KEYSMITH_MAX_CONNECTIONS", "-3"),
            ("KEYSMITH_FORWARD_AUTH_TOKEN", "short"),
        ] {
            let err = config(&[(name, value)]).expect_err("bad connection limit");
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn tenant_caps_have_defaults_and_bounds() {
        let c = config(&[]).expect("defaults");
        assert_eq!(
            (c.max_service_users_per_tenant, c.max_keys_per_tenant),
            (10_000, 50_000)
        );
        assert_eq!(c.max_concurrent_requests_per_tenant, 4);
        assert_eq!(c.oauth_unused_client_hours, 24);
        let c = config(&[
            ("KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", "3"),
            ("KEYSMITH_MAX_KEYS_PER_TENANT", "7"),
        ])
        .expect("valid");
        assert_eq!(
            (c.max_service_users_per_tenant, c.max_keys_per_tenant),
            (3, 7)
        );
        for (name, value) in [
            ("KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", "0"),
            ("KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", "1000001"),
            ("KEYSMITH_MAX_KEYS_PER_TENANT", "-1"),
            ("KEYSMITH_MAX_KEYS_PER_TENANT", "many"),
            ("KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT", "0"),
            ("KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT", "65"),
            ("KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS", "0"),
            ("KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS", "8761"),
        ] {
            let err = config(&[(name, value)]).expect_err("bad cap");
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_can_be_set() {
        assert_eq!(
            config(&[]).expect("defaults").connections,
            ConnectionLimits::default()
        );
        let c = config(&[
            ("KEYSMITH_HEADER_TIMEOUT_SECS", "5"),
            ("KEYSMITH_BODY_TIMEOUT_SECS", "120"),
            ("KEYSMITH_MAX_CONNECTIONS", "900"),
        ])
        .expect("valid");
        assert_eq!(
            c.connections,
            ConnectionLimits {
                header_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(120),
                max_connections: Some(900),
            }
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let c = config(&[
            (
                "KEYSMITH_DATABASE_URL",
                "postgres://app:hunter2@db/keysmith",
            ),
            ("KEYSMITH_SMTP_URL", "smtp://u:mailpass@mx:25"),
        ])
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("mailpass"),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:***@db/keysmith"));
    }

    #[test]
    fn redaction_parses_the_url_query_and_awkward_passwords_included() {
        for (raw, hidden, shown) in [
            (
                "postgres://app@db/k?password=hunter2&sslmode=require",
                "hunter2",
                "postgres://app@db/k?password=***&sslmode=require",
            ),
            (
                "postgres://app:p@ss:w0rd@db:5432/k",
                "ss:w0rd",
                "postgres://app:***@db:5432/k",
            ),
            (
                "postgres://app:p@ss/w0rd@db/k",
                "w0rd",
                "[unparseable URL hidden]",
            ),
            (
                "postgresql://app:h%40nter2@db/k?password=s3cret&sslmode=require",
                "s3cret",
                "postgresql://app:***@db/k?password=***&sslmode=require",
            ),
            (
                "postgres://app:hunter2@[::1:5432/k",
                "hunter2",
                "[unparseable URL hidden]",
            ),
        ] {
            let url = DatabaseUrl::parse(raw).expect("a postgres URL");
            let redacted = url.redacted();
            assert!(
                !redacted.contains(hidden) && !redacted.contains("nter2"),
                "{raw} → {redacted}"
            );
            assert!(redacted.contains(shown), "{raw} → {redacted}");
            assert_eq!(format!("{url}"), redacted);
        }
        let url = DatabaseUrl::parse("postgres://app@db/k?sslpassword=s3cret&sslmode=require")
            .expect("url");
        assert_eq!(
            url.expose(),
            "postgres://app@db/k?sslmode=require",
            "never reaches the driver, which would log it"
        );
        assert_eq!(url.ignored_params(), ["sslpassword"]);
        let url = DatabaseUrl::parse("postgres://app@db/k?sslpassword=s3cret").expect("url");
        assert_eq!(url.expose(), "postgres://app@db/k");
        let sqlite = DatabaseUrl::parse("sqlite://./data/k.db?mode=rwc").expect("sqlite");
        assert_eq!(sqlite.redacted(), "sqlite://./data/k.db?mode=rwc");
    }
}
