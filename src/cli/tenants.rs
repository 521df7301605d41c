//! `keysmith tenant …`: create tenants, read and change their key policy,
//! require a second factor of their admins.

use anyhow::Context;

use super::output::{Fields, Listing, Table, json, say};
use crate::{
    domain::{
        Actor, Name, TenantSlug,
        people::totp,
        tenancy::tenants::{self, NewTenant, Tenant},
    },
    error::AppError,
    routes::api::tenants::TenantPolicy,
    state::AppState,
};
use keysmith_verify::KeyPrefix;

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// List every tenant with its key policy.
    List {
        /// Print `{"items": [...]}`, each item as `tenant show --json`.
        #[arg(long)]
        json: bool,
    },
    /// Show a tenant and its key policy.
    Show {
        slug: String,
        /// Print the JSON API's answer (`GET /api/v1/tenants/{tenant}`).
        #[arg(long)]
        json: bool,
    },
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
    /// How long an OAuth access token lives, in minutes (5 to 1440).
    #[arg(long)]
    oauth_access_token_minutes: Option<i64>,
    /// An unused OAuth refresh token expires after this many days.
    #[arg(long)]
    oauth_refresh_idle_days: Option<i64>,
    /// A connection is approved again after this many days (1 to 365).
    #[arg(long)]
    oauth_refresh_absolute_days: Option<i64>,
    /// Whether OAuth clients may register themselves (RFC 7591).
    #[arg(long, value_parser = ["open", "closed"])]
    oauth_registration: Option<String>,
    /// Whether clients identified by a client ID metadata document are accepted.
    #[arg(long, value_parser = ["accepted", "refused"])]
    oauth_metadata_documents: Option<String>,
}

impl TenantCommand {
    pub async fn run(self, state: &AppState) -> anyhow::Result<()> {
        match self {
            Self::List { json } => list(state, json).await,
            Self::Show { slug, json } => show(state, &slug, json).await,
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

async fn list(state: &AppState, as_json: bool) -> anyhow::Result<()> {
    let all: Vec<TenantPolicy> = tenants::list(state.pool())
        .await?
        .into_iter()
        .map(TenantPolicy::from)
        .collect();
    if as_json {
        return json(&Listing::whole(all));
    }
    let mut table = Table::new(&[
        "SLUG",
        "NAME",
        "PREFIX",
        "DEFAULT DAYS",
        "MAX DAYS",
        "OVERLAP DAYS",
    ]);
    for t in all {
        table.row(vec![
            t.slug,
            t.name,
            t.key_prefix,
            t.default_expiry_days.to_string(),
            t.max_expiry_days.to_string(),
            t.rotation_overlap_days.to_string(),
        ]);
    }
    table.print()
}

async fn show(state: &AppState, slug: &str, as_json: bool) -> anyhow::Result<()> {
    let tenant = TenantPolicy::from(by_slug(state, slug).await?);
    if as_json {
        return json(&tenant);
    }
    let limit = |l: Option<String>| l.unwrap_or_else(|| "none".to_owned());
    let mut fields = Fields::default();
    fields.add("slug", &tenant.slug);
    fields.add("name", &tenant.name);
    fields.add("key prefix", &tenant.key_prefix);
    fields.add(
        "default expiry",
        &format!("{} days", tenant.default_expiry_days),
    );
    fields.add("max expiry", &format!("{} days", tenant.max_expiry_days));
    fields.add(
        "rotation overlap",
        &format!("{} days", tenant.rotation_overlap_days),
    );
    let rate = tenant
        .default_rate_limit
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    fields.add("default rate limit", &limit(rate));
    let quota = tenant
        .default_quota
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    fields.add("default quota", &limit(quota));
    fields.add(
        "oauth access tokens",
        &format!("{} minutes", tenant.oauth_access_token_minutes),
    );
    fields.add(
        "oauth refresh",
        &format!(
            "{} days idle, {} days at most",
            tenant.oauth_refresh_idle_days, tenant.oauth_refresh_absolute_days
        ),
    );
    let registration = if tenant.oauth_registration_open {
        "open"
    } else {
        "closed"
    };
    fields.add("oauth registration", registration);
    let documents = if tenant.oauth_metadata_documents {
        "accepted"
    } else {
        "refused"
    };
    fields.add("oauth metadata documents", documents);
    fields.print()
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
        oauth_access_token_minutes: args.oauth_access_token_minutes,
        oauth_refresh_idle_days: args.oauth_refresh_idle_days,
        oauth_refresh_absolute_days: args.oauth_refresh_absolute_days,
        oauth_registration_open: args.oauth_registration.as_deref().map(|r| r == "open"),
        oauth_metadata_documents: args
            .oauth_metadata_documents
            .as_deref()
            .map(|d| d == "accepted"),
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
