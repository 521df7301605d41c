//! The configuration as clap arguments: each `KEYSMITH_*` variable of the
//! server is also a flag of every command (`KEYSMITH_SCHEDULER_INTERVAL_SECS`
//! is `--scheduler-interval-secs`), so `--help` shows it with its variable,
//! its default and, for what is not secret, the value it has now. Clap reads
//! flag, then variable, then default; [`Config::from_lookup`] still checks
//! every value, its errors naming the variable.
//!
//! Left out, and read from the environment only: credentials (a command
//! line is visible to every user of the host), `keysmith gateway`'s own
//! variables (its flags read them, see `cli/gateway_args.rs`), and the log
//! settings, read before the command line is.

use std::collections::HashMap;

use clap::{Arg, ArgMatches};

use super::{Config, variables::VARIABLES};

/// Credentials: never a flag, never shown with their value.
const ENVIRONMENT_ONLY: &[&str] = &[
    "KEYSMITH_SMTP_URL",
    "KEYSMITH_METRICS_TOKEN",
    "KEYSMITH_FORWARD_AUTH_TOKEN",
    "KEYSMITH_VERIFY_KEY",
    "KEYSMITH_LOG",
    "KEYSMITH_LOG_FORMAT",
];

/// Variables `keysmith gateway`'s own flags read.
const GATEWAY_FLAGS: &[&str] = &[
    "KEYSMITH_REDIS_URL",
    "KEYSMITH_GATEWAY_ALLOWED_ORIGINS",
    "KEYSMITH_UPSTREAM_CA_FILE",
    "KEYSMITH_VERIFY_URL",
    "KEYSMITH_VERIFY_CA_FILE",
    "KEYSMITH_VERIFY_CACHE_TTL_SECS",
    "KEYSMITH_AUDIT_SPOOL_EVENTS",
    "KEYSMITH_GATEWAY_THREADS",
];

/// Shown in `--help` without their current value: a URL may carry a password.
const VALUE_HIDDEN: &[&str] = &["KEYSMITH_DATABASE_URL"];

/// The flag of a variable: `KEYSMITH_BIND` would clash with `gateway
/// --bind` (the gateway's own address), so it is `--serve-bind`.
fn flag_of(name: &str) -> String {
    match name {
        "KEYSMITH_BIND" => "serve-bind".to_owned(),
        _ => name
            .trim_start_matches("KEYSMITH_")
            .to_ascii_lowercase()
            .replace('_', "-"),
    }
}

/// Whether the table's default is the value itself, not words for one
/// worked out from other settings (`<data dir>/pepper`, `unset`).
fn is_literal(name: &str, default: &str) -> bool {
    name != "KEYSMITH_DATABASE_URL" && default != "unset" && !default.contains(['<', ' '])
}

/// The variables that are flags.
fn flagged() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    VARIABLES
        .iter()
        .filter(|(name, ..)| !ENVIRONMENT_ONLY.contains(name) && !GATEWAY_FLAGS.contains(name))
}

/// One global argument per flagged variable, for the root command.
pub fn args() -> Vec<Arg> {
    flagged()
        .map(|&(name, default, meaning)| {
            let arg = Arg::new(name)
                .long(flag_of(name))
                .env(name)
                .global(true)
                .value_name("VALUE")
                .help_heading("Configuration (flag, or the variable in brackets)")
                // `-h` stays a summary of the command's own options.
                .hide_short_help(true)
                .hide_env_values(VALUE_HIDDEN.contains(&name));
            if is_literal(name, default) {
                arg.help(meaning).default_value(default)
            } else {
                arg.help(format!("{meaning} [default: {default}]"))
            }
        })
        .collect()
}

/// What `--help` ends with: the variables that are not flags.
pub fn environment_only_help() -> String {
    super::variables::help(|name| !flagged().any(|(n, ..)| *n == name))
}

/// The configuration the command line and the environment give.
#[derive(Debug, Default, Clone)]
pub struct Settings(HashMap<&'static str, String>);

impl Settings {
    pub fn from_matches(matches: &ArgMatches) -> Self {
        Self(
            flagged()
                .filter_map(|(name, ..)| {
                    let value = matches.try_get_one::<String>(name).ok().flatten()?;
                    Some((*name, value.clone()))
                })
                .collect(),
        )
    }

    /// Checks every value; the variables that are not flags are read from
    /// the environment. An error names the variable, and its flag.
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::from_lookup(|name| match self.0.get(name) {
            Some(value) => Some(value.clone()),
            None if flagged().any(|(n, ..)| *n == name) => None,
            None => std::env::var(name).ok(),
        })
        .map_err(|err| {
            let text = format!("{err:#}");
            let named = flagged()
                .map(|(name, ..)| *name)
                .filter(|name| text.contains(name))
                .max_by_key(|name| name.len());
            match named {
                Some(name) => anyhow::anyhow!("{text} (flag --{})", flag_of(name)),
                None => err,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("keysmith")
            .args(args())
            .subcommand(clap::Command::new("serve"))
            .subcommand(clap::Command::new("gateway").arg(Arg::new("bind").long("bind")))
    }

    #[test]
    fn flags_come_before_variables_and_defaults_and_are_checked() {
        let matches = command()
            .try_get_matches_from(["keysmith", "serve", "--scheduler-interval-secs", "7"])
            .expect("parses");
        let (_, serve) = matches.subcommand().expect("serve");
        let config = Settings::from_matches(serve).config().expect("valid");
        assert_eq!(config.scheduler_interval, std::time::Duration::from_secs(7));
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080", "the default");
        let matches = command()
            .try_get_matches_from(["keysmith", "--serve-bind", "nope", "serve"])
            .expect("parses");
        let (_, serve) = matches.subcommand().expect("serve");
        let err = Settings::from_matches(serve)
            .config()
            .expect_err("bad bind");
        assert!(err.to_string().contains("KEYSMITH_BIND must be"), "{err}");
        assert!(err.to_string().ends_with("(flag --serve-bind)"), "{err}");
    }

    #[test]
    fn the_gateway_keeps_its_own_bind_and_credentials_are_never_flags() {
        command().debug_assert();
        let flags: Vec<String> = args()
            .iter()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect();
        for secret in [
            "smtp-url",
            "metrics-token",
            "forward-auth-token",
            "verify-key",
            "bind",
        ] {
            assert!(!flags.iter().any(|f| f == secret), "--{secret}");
        }
        assert!(flags.iter().any(|f| f == "data-dir"), "{flags:?}");
    }
}
