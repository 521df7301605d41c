//! The commands that run or look after an instance rather than its data:
//! `serve`, `migrate`, `healthcheck`, `backup`, `restore`, `completions`.

use anyhow::Context;

use super::output::say;
use crate::{config::Config, startup};

/// `keysmith serve`: migrates, prints the first-run setup link when there
/// is no admin yet, and serves until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = startup::prepare(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("failed to bind {bind} (KEYSMITH_BIND)"))?;
    // Printed, never logged: the link is a credential until used.
    if let Some(secret) = state
        .first_run
        .issue_if_needed(state.pool(), state.now())
        .await?
    {
        say(format_args!(
            "No admin account yet. Create the first superadmin within the hour at:\n  {}/admin/setup?token={}\n(or: keysmith user create --superadmin)",
            state.config.public_url,
            secret.expose()
        ))?;
    }
    startup::serve(state, listener, startup::shutdown_signal()).await
}

/// `keysmith migrate`: creates the database if needed and applies every migration.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    startup::prepare(config).await?;
    say(format_args!("migrations applied"))
}

/// `keysmith completions <shell>`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = super::Cli::full_command();
    clap_complete::generate(shell, &mut command, "keysmith", &mut std::io::stdout());
    Ok(())
}

/// `keysmith backup <file>`: opens no database through the server's path,
/// so none is created or migrated.
pub async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let copied = crate::db::backup::backup(&config.database_url, file).await?;
    say(format_args!(
        "backed up {} to {} ({} bytes, schema {}); the pepper is not in it: keep {} safe elsewhere",
        copied.database.display(),
        copied.file.display(),
        copied.bytes,
        copied.schema_version,
        config.pepper_file.display()
    ))
}

/// `keysmith restore <file>`: checks the backup before anything is replaced.
pub async fn restore(config: &Config, file: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let copied = crate::db::backup::restore(&config.database_url, file, force).await?;
    say(format_args!(
        "restored {} into {} (schema {}); it needs the pepper it was made with ({}); `keysmith serve` applies newer migrations",
        copied.file.display(),
        copied.database.display(),
        copied.schema_version,
        config.pepper_file.display()
    ))
}
