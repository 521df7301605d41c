//! Every `KEYSMITH_*` variable, its default and what it does, in one table:
//! `keysmith --help` shows each (as a flag with its variable, see
//! `flags.rs`, or in the list it ends with), and a test holds it, the code
//! and the book's Configuration table (`docs/src/operating/configuration.md`)
//! to the same list.

/// `(name, default, meaning)`, in the order the book lists them.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "KEYSMITH_DATABASE_URL",
        "sqlite://./keysmith-data/keysmith.db?mode=rwc",
        "sqlite://… or postgres://user:pass@host/db",
    ),
    (
        "KEYSMITH_DATA_DIR",
        "./keysmith-data",
        "embedded database, pepper and .eml files (0700)",
    ),
    ("KEYSMITH_BIND", "127.0.0.1:8080", "where `serve` listens"),
    (
        "KEYSMITH_PEPPER_FILE",
        "<data dir>/pepper",
        "HMAC pepper(s); keep it apart from database backups",
    ),
    (
        "KEYSMITH_ALLOW_READABLE_PEPPER",
        "unset",
        "1: start with a pepper file others can read",
    ),
    (
        "KEYSMITH_PUBLIC_URL",
        "http://<bind>",
        "links in emails; https:// turns on Secure cookies and HSTS",
    ),
    (
        "KEYSMITH_SMTP_URL",
        "unset",
        "SMTP server for owner emails; unset: .eml files",
    ),
    (
        "KEYSMITH_MAIL_FROM",
        "Keysmith <keysmith@localhost>",
        "sender of owner emails",
    ),
    (
        "KEYSMITH_SCHEDULER_INTERVAL_SECS",
        "60",
        "how often the lifecycle clock ticks",
    ),
    (
        "KEYSMITH_METRICS_TOKEN",
        "unset",
        "bearer token /metrics requires; unset: local clients only",
    ),
    (
        "KEYSMITH_METRICS_BIND",
        "unset",
        "serve /metrics on this address only",
    ),
    (
        "KEYSMITH_GITHUB_SCANNING_KEYS",
        "unset",
        "GitHub's public keys (JSON file) for signed leak reports",
    ),
    (
        "KEYSMITH_AUDIT_RETENTION_DAYS",
        "90",
        "per-call audit events kept this long (rollups stay)",
    ),
    (
        "KEYSMITH_TRUSTED_PROXIES",
        "unset",
        "proxies whose forwarding headers name the client",
    ),
    (
        "KEYSMITH_REQUIRE_TOTP",
        "unset",
        "1: every admin account must use two-factor sign-in",
    ),
    (
        "KEYSMITH_REDIS_URL",
        "unset",
        "Redis shared by gateways for limits and quotas",
    ),
    (
        "KEYSMITH_MAX_WEBHOOKS_PER_TENANT",
        "10",
        "webhook endpoints per tenant (1-1000)",
    ),
    (
        "KEYSMITH_MAX_SERVICE_USERS_PER_TENANT",
        "10000",
        "service users per tenant",
    ),
    (
        "KEYSMITH_MAX_KEYS_PER_TENANT",
        "50000",
        "working keys per tenant",
    ),
    (
        "KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT",
        "1000",
        "stored OAuth clients per tenant (registered and pre-registered)",
    ),
    (
        "KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS",
        "24",
        "registered OAuth clients with no grant are deleted after this",
    ),
    (
        "KEYSMITH_OAUTH_CLIENT_ALLOW_PRIVATE",
        "unset",
        "1: client ID metadata documents may be on private addresses",
    ),
    (
        "KEYSMITH_OAUTH_CLIENT_CA_FILE",
        "unset",
        "PEM roots trusted for client ID metadata documents",
    ),
    (
        "KEYSMITH_MAX_CONCURRENT_REQUESTS_PER_TENANT",
        "4",
        "management-API requests of one tenant at once (1-64)",
    ),
    (
        "KEYSMITH_WEBHOOK_INTERVAL_SECS",
        "5",
        "how often due webhook deliveries are looked for",
    ),
    (
        "KEYSMITH_WEBHOOK_TIMEOUT_SECS",
        "10",
        "one webhook delivery attempt, at most (1-60)",
    ),
    (
        "KEYSMITH_WEBHOOK_ALLOW_PRIVATE",
        "unset",
        "1: webhooks may target private addresses",
    ),
    (
        "KEYSMITH_HEADER_TIMEOUT_SECS",
        "15",
        "time to send a request head (idle connections close)",
    ),
    (
        "KEYSMITH_BODY_TIMEOUT_SECS",
        "60",
        "time to send a request body",
    ),
    (
        "KEYSMITH_MAX_CONNECTIONS",
        "half the open-file limit, at most 10000",
        "connections served at once",
    ),
    (
        "KEYSMITH_GATEWAY_ALLOWED_ORIGINS",
        "unset",
        "gateway: browser origins allowed besides its own",
    ),
    (
        "KEYSMITH_UPSTREAM_CA_FILE",
        "unset",
        "gateway: PEM roots to trust for an https upstream",
    ),
    (
        "KEYSMITH_FORWARD_AUTH_TOKEN",
        "unset",
        "token proxies send to forward-auth; unset: this host's proxies only",
    ),
    (
        "KEYSMITH_VERIFY_URL",
        "unset",
        "gateway: verify through this Keysmith server, no database",
    ),
    (
        "KEYSMITH_VERIFY_KEY",
        "unset",
        "gateway with --verify-url: a management key of scope verify",
    ),
    (
        "KEYSMITH_VERIFY_CA_FILE",
        "unset",
        "gateway: PEM roots to trust for --verify-url",
    ),
    (
        "KEYSMITH_VERIFY_CACHE_TTL_SECS",
        "5",
        "gateway: seconds a verdict is trusted (0-300)",
    ),
    (
        "KEYSMITH_AUDIT_SPOOL_EVENTS",
        "100000",
        "remote gateway: audit events kept while the server is away",
    ),
    (
        "KEYSMITH_GATEWAY_THREADS",
        "0 (one per core)",
        "gateway: serving threads, each with its own listener (0-256)",
    ),
    (
        "KEYSMITH_LOG",
        "info,sqlx=warn",
        "log filter (tracing env-filter syntax)",
    ),
    ("KEYSMITH_LOG_FORMAT", "text", "text or json"),
];

/// The variables `include` picks, as `keysmith --help` ends with them
/// (those that are not flags: see `flags.rs`).
pub fn help(include: impl Fn(&str) -> bool) -> String {
    let listed: Vec<_> = VARIABLES
        .iter()
        .filter(|(name, ..)| include(name))
        .collect();
    let width = listed
        .iter()
        .map(|(name, ..)| name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from(
        "Also read from the environment (credentials and log settings never as flags; \
         `keysmith gateway --help` shows its own):\n",
    );
    for (name, default, meaning) in listed {
        out.push_str(&format!(
            "  {name:width$}  {meaning} [default: {default}]\n"
        ));
    }
    out
}
