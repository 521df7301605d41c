//! The command line. Every command reads the same `KEYSMITH_*` configuration
//! as the server; each group of commands lives in its own file below.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{config::flags::Settings, startup};

mod args;
mod gateway_args;
mod keys;
mod management_keys;
mod operations;
mod output;
mod password;
mod service_users;
mod tenants;
mod users;

#[derive(Debug, Parser)]
#[command(
    name = "keysmith",
    version = crate::metrics::VERSION,
    about = "Service API keys for machine clients"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The configuration flags and variables, as clap read them.
    #[arg(skip)]
    settings: Settings,
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
        file: PathBuf,
    },
    /// Replace the embedded SQLite database with a backup made by `keysmith
    /// backup` (stop the server first). Checks the file before anything is replaced.
    Restore {
        /// The backup to restore.
        file: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenants::TenantCommand),
    /// Manage admin accounts.
    #[command(subcommand)]
    User(users::UserCommand),
    /// A tenant's API keys: list, show, create, rotate, revoke.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// A tenant's service users (the identities keys are issued to).
    #[command(subcommand, name = "service-user")]
    ServiceUser(service_users::ServiceUserCommand),
    /// Keys that call the JSON API for one tenant (scope `keysmith:admin`).
    #[command(subcommand, name = "management-key")]
    ManagementKey(management_keys::ManagementKeyCommand),
    /// The verification layer in front of any HTTP or MCP server.
    Gateway(gateway_args::GatewayArgs),
}

impl Cli {
    /// Parses the command line: every `KEYSMITH_*` variable is a flag too,
    /// or listed at the end of `--help`, each with its default.
    pub fn parse_args() -> Self {
        use clap::FromArgMatches;
        let matches = Self::full_command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        cli.settings = Settings::from_matches(&matches);
        cli
    }

    /// The commands with the configuration flags (what completions complete too).
    fn full_command() -> clap::Command {
        use clap::CommandFactory;
        Self::command()
            .args(crate::config::flags::args())
            .after_long_help(crate::config::flags::environment_only_help())
    }

    pub async fn run(self) -> ExitCode {
        if let Err(err) = startup::init_tracing() {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            return ExitCode::FAILURE;
        }
        keysmith_verify::tls::install_default_provider();
        match self.command.execute(&self.settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                // AppError's Display is already the user-facing message.
                let _ = writeln!(std::io::stderr(), "error: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

impl Command {
    async fn execute(self, settings: &Settings) -> anyhow::Result<()> {
        // Only `serve` and `migrate` create or migrate a database: every other
        // command works on one they prepared, so a command run from the wrong
        // directory says which database it looked for instead of making one.
        let existing = startup::prepare_existing;
        // Completions need no configuration: they work before any is set.
        let config = || settings.config();
        match self {
            Self::Completions { shell } => operations::completions(shell),
            Self::Serve => operations::serve(config()?).await,
            Self::Migrate => operations::migrate(config()?).await,
            Self::Healthcheck => crate::health_probe::probe(config()?.bind).await,
            Self::Backup { file } => operations::backup(&config()?, &file).await,
            Self::Restore { file, force } => operations::restore(&config()?, &file, force).await,
            // Builds only what it uses: never migrates, no mailer, no sessions.
            Self::Gateway(args) => args.run(config()?).await,
            Self::Tenant(command) => command.run(&existing(config()?).await?).await,
            Self::User(command) => command.run(&existing(config()?).await?).await,
            Self::Key(command) => command.run(&existing(config()?).await?).await,
            Self::ServiceUser(command) => command.run(&existing(config()?).await?).await,
            Self::ManagementKey(command) => command.run(&existing(config()?).await?).await,
        }
    }
}
