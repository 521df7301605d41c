//! `keysmith tenant …`: create tenants, read and change their key policy,
//! require a second factor of their admins.

use anyhow::Context;

use super::output::say;
use crate::{
    domain::{
        Actor, Name, TenantSlug,
        tenants::{self, NewTenant, Tenant},
        totp,
    },
    error::AppError,
    state::AppState,
};
use keysmith_verify::KeyPrefix;

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
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
    Policy(PolicyArgs),
    /// Require a second factor (TOTP) of the tenant's admins, or stop (`--off`).
    RequireTotp {
        slug: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
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
}

impl TenantCommand {
    pub async fn run(self, state: &AppState) -> anyhow::Result<()> {
        match self {
            Self::Create {
                slug,
                name,
                key_prefix,
            } => create(state, &slug, &name, &key_prefix).await,
            Self::Policy(args) => policy(state, args).await,
            Self::RequireTotp { slug, off } => require_totp(state, &slug, off).await,
        }
    }
}

/// The tenant with this slug, or "tenant not found".
pub async fn by_slug(state: &AppState, slug: &str) -> anyhow::Result<Tenant> {
    Ok(tenants::find_by_slug(state.pool(), slug)
        .await?
        .ok_or(AppError::NotFound("tenant"))?)
}

async fn create(state: &AppState, slug: &str, name: &str, key_prefix: &str) -> anyhow::Result<()> {
    let new = NewTenant {
        slug: TenantSlug::parse(slug)?,
        name: Name::parse("name", name)?,
        key_prefix: KeyPrefix::parse(key_prefix)?,
    };
    let tenant = tenants::create(state.pool(), new, state.now()).await?;
    say(format_args!(
        "created tenant {} ({})",
        tenant.slug, tenant.name
    ))
}

async fn policy(state: &AppState, args: PolicyArgs) -> anyhow::Result<()> {
    let mut tenant = by_slug(state, &args.slug).await?;
    let change = tenants::PolicyChange {
        default_expiry_days: args.default_expiry_days,
        max_expiry_days: args.max_expiry_days,
        rotation_overlap_days: args.rotation_overlap_days,
        key_prefix: args
            .key_prefix
            .as_deref()
            .map(KeyPrefix::parse)
            .transpose()?,
        default_rate_limit: limit_arg("--default-rate-limit", args.default_rate_limit)?,
        default_quota: limit_arg("--default-quota", args.default_quota)?,
    };
    if !change.is_empty() {
        tenant = tenants::update_policy(state.pool(), &tenant.id, change, &Actor::Cli, state.now())
            .await?;
    }
    say(format_args!("{}", tenants::policy(&tenant)))
}

async fn require_totp(state: &AppState, slug: &str, off: bool) -> anyhow::Result<()> {
    totp::set_tenant_requirement(state.pool(), slug, !off, &Actor::Cli, state.now()).await?;
    let verb = if off {
        "no longer requires"
    } else {
        "requires"
    };
    say(format_args!(
        "{slug} {verb} two-factor sign-in of its admins"
    ))
}

/// A limit given on the command line as the API's JSON, or `none` to lift it.
pub fn limit_arg<T: serde::de::DeserializeOwned>(
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
