//! The command line. Every command reads the same `KEYSMITH_*` configuration as the server.

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    config::Config,
    domain::{
        Actor, Description, Email, Name, Scope, TenantSlug, accounts,
        caps::TenantCaps,
        keys::{self, ExpiryRequest, NewKey},
        service_users::{self, NewServiceUser},
        tenants::{self, NewTenant},
        totp,
        users::{self, Password, Role},
    },
    error::AppError,
    startup,
};
use keysmith_verify::{Capabilities, KeyPrefix};

mod gateway_args;

#[derive(Debug, Parser)]
#[command(
    name = "keysmith",
    version = crate::metrics::VERSION,
    about = "Service API keys for machine clients"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (applies migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell), e.g. `keysmith completions bash > /etc/bash_completion.d/keysmith`.
    Completions { shell: clap_complete::Shell },
    /// Ask the server on KEYSMITH_BIND for /healthz: exit 0 if it answers
    /// 200 within 3 s (the Docker HEALTHCHECK; opens no database).
    Healthcheck,
    /// Copy the embedded SQLite database to FILE, consistent while the server
    /// runs (PostgreSQL: use pg_dump). The pepper is not in it: keep
    /// KEYSMITH_PEPPER_FILE safe elsewhere.
    Backup {
        /// Where the copy goes; must not exist.
        file: std::path::PathBuf,
    },
    /// Replace the embedded SQLite database with a backup made by `keysmith
    /// backup` (stop the server first). Checks the file before anything is replaced.
    Restore {
        /// The backup to restore.
        file: std::path::PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage admin accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Keys that call the JSON API for one tenant (scope `keysmith:admin`).
    #[command(subcommand, name = "management-key")]
    ManagementKey(ManagementKeyCommand),
    /// The verification layer in front of any HTTP or MCP server.
    Gateway(gateway_args::GatewayArgs),
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        slug: String,
        #[arg(long)]
        name: String,
        /// Prefix of the tenant's keys (default `ks`).
        #[arg(long, default_value = "ks")]
        key_prefix: String,
    },
    /// Show, or change, a tenant's key policy.
    Policy {
        slug: String,
        /// Lifetime of a key created without an expiry.
        #[arg(long)]
        default_expiry_days: Option<i64>,
        /// Longest lifetime a key may be given (at most 3650).
        #[arg(long)]
        max_expiry_days: Option<i64>,
        /// How long a rotated key keeps working (1 to 30).
        #[arg(long)]
        rotation_overlap_days: Option<i64>,
        /// Prefix of keys created from now on.
        #[arg(long)]
        key_prefix: Option<String>,
        /// Rate limit of new keys that set none, as in the API
        /// (`'{"per_minute": 600}'`), or `none` to lift it.
        #[arg(long)]
        default_rate_limit: Option<String>,
        /// Quota of new keys that set none (`'{"calls": 10000, "per": "day"}'`), or `none`.
        #[arg(long)]
        default_quota: Option<String>,
    },
    /// Require a second factor (TOTP) of the tenant's admins, or stop (`--off`).
    RequireTotp {
        slug: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an admin account; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Instance-wide administrator: creates tenants.
        #[arg(long)]
        superadmin: bool,
        /// Tenant to grant a role in.
        #[arg(long, requires = "role")]
        tenant: Option<String>,
        #[arg(long, value_enum, requires = "tenant")]
        role: Option<Role>,
    },
    /// Disable an account: it cannot sign in, and its open sessions end at once.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account again (its old sessions stay ended).
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Turn off an account's second factor (a lost device); its sessions end.
    ResetTotp {
        #[arg(long)]
        email: String,
    },
    /// Give an account a temporary password (read from standard input) that
    /// it must replace at its next sign-in; its sessions end at once.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum ManagementKeyCommand {
    /// Create a management key and print it once.
    Create {
        #[arg(long)]
        tenant: String,
        /// Who is told before the tenant's management keys expire (30, 7 and
        /// 1 days ahead) and when one is rotated: a key nobody hears about
        /// stops every process that uses it on the day it expires.
        #[arg(long)]
        owner_email: String,
        #[arg(long, default_value = "management")]
        name: String,
        /// `admin`: the whole JSON API of the tenant; `verify`: only
        /// `POST /api/v1/verify` (what a remote verifier needs).
        #[arg(long, value_enum, default_value = "admin")]
        scope: ManagementScope,
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Print `{"id","key","expires_at"}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ManagementScope {
    Admin,
    Verify,
    /// Report leaked keys for revocation (GitLab's token revocation API).
    RevokeLeaked,
}

impl Cli {
    /// Parses the command line; `--help` ends with every `KEYSMITH_*`
    /// variable and its default.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command()
            .after_long_help(crate::config::variables::help())
            .get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }

    pub async fn run(self) -> ExitCode {
        if let Err(err) = startup::init_tracing() {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            return ExitCode::FAILURE;
        }
        keysmith_verify::tls::install_default_provider();
        match self.execute().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                // AppError's Display is already the user-facing message.
                let _ = writeln!(std::io::stderr(), "error: {err:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn execute(self) -> anyhow::Result<()> {
        if let Command::Completions { shell } = self.command {
            use clap::CommandFactory;
            let mut command = Self::command();
            clap_complete::generate(shell, &mut command, "keysmith", &mut std::io::stdout());
            return Ok(());
        }
        let config = Config::from_env()?;
        let bind = config.bind;
        let command = match self.command {
            // Builds only what it uses: never migrates, no mailer, no sessions.
            Command::Gateway(args) => return args.run(config).await,
            other => other,
        };
        // These open no database through the server's path, so none is created or migrated.
        match &command {
            Command::Healthcheck => return crate::health_probe::probe(bind).await,
            Command::Backup { file } => {
                let copied = crate::db::backup::backup(&config.database_url, file).await?;
                return say(format_args!(
                    "backed up {} to {} ({} bytes, schema {}); the pepper is not in it: keep {} safe elsewhere",
                    copied.database.display(),
                    copied.file.display(),
                    copied.bytes,
                    copied.schema_version,
                    config.pepper_file.display()
                ));
            }
            Command::Restore { file, force } => {
                let copied = crate::db::backup::restore(&config.database_url, file, *force).await?;
                return say(format_args!(
                    "restored {} into {} (schema {}); it needs the pepper it was made with ({}); `keysmith serve` applies newer migrations",
                    copied.file.display(),
                    copied.database.display(),
                    copied.schema_version,
                    config.pepper_file.display()
                ));
            }
            _ => {}
        }
        let state = startup::prepare(config).await?;
        let now = state.now();
        let pool = state.pool();
        match command {
            Command::Serve => {
                let listener = tokio::net::TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("failed to bind {bind} (KEYSMITH_BIND)"))?;
                // Printed, never logged: the link is a credential until used.
                if let Some(secret) = state.first_run.issue_if_needed(pool, now).await? {
                    say(format_args!(
                        "No admin account yet. Create the first superadmin within the hour at:\n  {}/admin/setup?token={}\n(or: keysmith user create --superadmin)",
                        state.config.public_url,
                        secret.expose()
                    ))?;
                }
                startup::serve(state, listener, startup::shutdown_signal()).await?;
            }
            Command::Migrate => say(format_args!("migrations applied"))?,
            Command::Healthcheck
            | Command::Completions { .. }
            | Command::Backup { .. }
            | Command::Restore { .. }
            | Command::Gateway(_) => {
                unreachable!("answered before the database is opened")
            }
            Command::Tenant(TenantCommand::Create {
                slug,
                name,
                key_prefix,
            }) => {
                let tenant = tenants::create(
                    pool,
                    NewTenant {
                        slug: TenantSlug::parse(&slug)?,
                        name: Name::parse("name", &name)?,
                        key_prefix: KeyPrefix::parse(&key_prefix)?,
                    },
                    now,
                )
                .await?;
                say(format_args!(
                    "created tenant {} ({})",
                    tenant.slug, tenant.name
                ))?;
            }
            Command::Tenant(TenantCommand::Policy {
                slug,
                default_expiry_days,
                max_expiry_days,
                rotation_overlap_days,
                key_prefix,
                default_rate_limit,
                default_quota,
            }) => {
                let mut tenant = tenants::find_by_slug(pool, &slug)
                    .await?
                    .ok_or(AppError::NotFound("tenant"))?;
                let change = tenants::PolicyChange {
                    default_expiry_days,
                    max_expiry_days,
                    rotation_overlap_days,
                    key_prefix: key_prefix.as_deref().map(KeyPrefix::parse).transpose()?,
                    default_rate_limit: limit_arg("--default-rate-limit", default_rate_limit)?,
                    default_quota: limit_arg("--default-quota", default_quota)?,
                    ..Default::default()
                };
                if !change.is_empty() {
                    tenant =
                        tenants::update_policy(pool, &tenant.id, change, &Actor::Cli, now).await?;
                }
                say(format_args!("{}", tenants::policy(&tenant)))?;
            }
            Command::Tenant(TenantCommand::RequireTotp { slug, off }) => {
                totp::set_tenant_requirement(pool, &slug, !off, &Actor::Cli, now).await?;
                say(format_args!(
                    "{slug} {} two-factor sign-in of its admins",
                    if off {
                        "no longer requires"
                    } else {
                        "requires"
                    }
                ))?;
            }
            Command::User(UserCommand::Create {
                email,
                superadmin,
                tenant,
                role,
            }) => {
                let email = Email::parse(&email)?;
                let tenant = match tenant {
                    Some(slug) => Some(
                        tenants::find_by_slug(pool, &slug)
                            .await?
                            .ok_or(AppError::NotFound("tenant"))?,
                    ),
                    None => None,
                };
                let password = Password::parse(read_password().await?)?;
                let user = users::create(pool, &email, password, superadmin, now).await?;
                if let (Some(tenant), Some(role)) = (&tenant, role) {
                    users::grant(pool, &tenant.id, &user.id, role, now).await?;
                    say(format_args!(
                        "created {} with role {} in {}",
                        user.email,
                        role.as_str(),
                        tenant.slug
                    ))?;
                } else {
                    say(format_args!(
                        "created {}{}",
                        user.email,
                        if superadmin { " (superadmin)" } else { "" }
                    ))?;
                }
            }
            Command::User(UserCommand::Disable { email }) => {
                accounts::set_disabled(pool, &email, true, &Actor::Cli, now).await?;
                say(format_args!("disabled {email}; its sessions have ended"))?;
            }
            Command::User(UserCommand::ResetTotp { email }) => {
                totp::reset(pool, &email, &Actor::Cli, now).await?;
                say(format_args!("turned off two-factor sign-in for {email}"))?;
            }
            Command::User(UserCommand::ResetPassword { email }) => {
                let temporary = Password::parse(read_password().await?)?;
                accounts::reset_password(pool, &email, temporary, &Actor::Cli, now).await?;
                say(format_args!(
                    "reset the password of {email}; it must choose a new one at its next sign-in"
                ))?;
            }
            Command::User(UserCommand::Enable { email }) => {
                accounts::set_disabled(pool, &email, false, &Actor::Cli, now).await?;
                say(format_args!("enabled {email}"))?;
            }
            Command::ManagementKey(ManagementKeyCommand::Create {
                tenant,
                owner_email,
                name,
                scope,
                expires_in_days,
                json,
            }) => {
                let caps = TenantCaps::of(&state.config);
                let owner_email = Email::parse(&owner_email)?;
                let tenant = tenants::find_by_slug(pool, &tenant)
                    .await?
                    .ok_or(AppError::NotFound("tenant"))?;
                let owner = match service_users::find_by_name(
                    pool,
                    &tenant.id,
                    service_users::MANAGEMENT,
                )
                .await?
                {
                    // One owner for the tenant's management keys: the latest named.
                    Some(owner) if owner.owner_email.as_deref() == Some(owner_email.as_str()) => {
                        owner
                    }
                    Some(owner) => {
                        let change = service_users::ServiceUserChange {
                            owner_email: Some(owner_email),
                            ..Default::default()
                        };
                        service_users::update(pool, &tenant.id, &owner.id, change, &Actor::Cli, now)
                            .await?
                    }
                    None => {
                        let new = NewServiceUser {
                                name: Name::parse("name", service_users::MANAGEMENT)?,
                                owner_email: Some(owner_email),
                                description: Some(Description::parse(
                                    "Owns the tenant's management keys (keysmith management-key create)",
                                )?
                                .ok_or_else(|| anyhow::anyhow!("description"))?),
                            };
                        service_users::create(
                            pool,
                            &tenant.id,
                            new,
                            caps.service_users,
                            &Actor::Cli,
                            now,
                        )
                        .await?
                    }
                };
                let new = NewKey {
                    service_user_id: owner.id,
                    name: Name::parse("name", &name)?,
                    expiry: expires_in_days
                        .map_or(ExpiryRequest::TenantDefault, ExpiryRequest::InDays),
                    allowed: Capabilities::everything(),
                    scopes: vec![match scope {
                        ManagementScope::Admin => Scope::admin(),
                        ManagementScope::Verify => Scope::verify(),
                        ManagementScope::RevokeLeaked => Scope::revoke_leaked(),
                    }],
                    limits: Default::default(),
                };
                let issued = keys::create(
                    pool,
                    &state.peppers,
                    &tenant,
                    new,
                    caps.keys,
                    &Actor::Cli,
                    now,
                )
                .await?;
                let expires_at = issued.row.expires_at.rfc3339();
                if json {
                    let out = serde_json::json!({"id": issued.row.id, "key": issued.key.expose(), "expires_at": expires_at});
                    say(format_args!("{out}"))?;
                } else {
                    say(format_args!(
                        "{}\n\nThis is the only time the key is shown. Key id {}, expires {expires_at}.",
                        issued.key.expose(),
                        issued.row.id
                    ))?;
                }
            }
        }
        Ok(())
    }
}

/// Reads the first line of standard input; on a terminal, prompts and reads
/// it without echo (what is typed is never shown).
async fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let terminal = std::io::stdin().is_terminal();
    let line = tokio::task::spawn_blocking(move || {
        // Echo goes off before the prompt shows: nothing typed after it is seen.
        let _echo_off = terminal.then(EchoOff::new).transpose()?;
        if terminal {
            let _ = write!(std::io::stderr(), "Password (not shown): ");
        }
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await?
    .context("failed to read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The terminal's echo turned off while it lives, restored when dropped
/// (also on an error or a panic while reading).
struct EchoOff(rustix::termios::Termios);

impl EchoOff {
    fn new() -> std::io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let before = tcgetattr(&stdin)?;
        let mut quiet = before.clone();
        // No echo of what is typed, but of the Enter that ends it.
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        Ok(Self(before))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

fn say(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    writeln!(std::io::stdout(), "{args}").context("failed to write to standard output")
}

/// A limit given on the command line as the API's JSON, or `none` to lift it.
fn limit_arg<T: serde::de::DeserializeOwned>(
    flag: &str,
    raw: Option<String>,
) -> anyhow::Result<Option<Option<T>>> {
    raw.map(|raw| match raw.trim() {
        "none" => Ok(None),
        json => serde_json::from_str(json)
            .map(Some)
            .with_context(|| format!("{flag} takes JSON as in the API, or `none`")),
    })
    .transpose()
}
