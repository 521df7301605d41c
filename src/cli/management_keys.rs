//! `keysmith management-key create`: keys that call the JSON API (or only
//! verify keys) for one tenant, owned by the tenant's management service user.

use super::{output::say, tenants::by_slug};
use crate::{
    domain::{
        Actor, Description, Email, Name, Scope,
        caps::TenantCaps,
        keys::{self, ExpiryRequest, NewKey},
        service_users::{self, NewServiceUser, ServiceUser},
        tenants::Tenant,
    },
    state::AppState,
};
use keysmith_verify::Capabilities;

#[derive(Debug, clap::Subcommand)]
pub enum ManagementKeyCommand {
    /// Create a management key and print it once.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
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
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ManagementScope {
    Admin,
    Verify,
    /// Report leaked keys for revocation (GitLab's token revocation API).
    RevokeLeaked,
}

impl ManagementKeyCommand {
    pub async fn run(self, state: &AppState) -> anyhow::Result<()> {
        match self {
            Self::Create(args) => create(state, args).await,
        }
    }
}

async fn create(state: &AppState, args: CreateArgs) -> anyhow::Result<()> {
    let owner_email = Email::parse(&args.owner_email)?;
    let tenant = by_slug(state, &args.tenant).await?;
    let owner = management_owner(state, &tenant, owner_email).await?;
    let new = NewKey {
        service_user_id: owner.id,
        name: Name::parse("name", &args.name)?,
        expiry: args
            .expires_in_days
            .map_or(ExpiryRequest::TenantDefault, ExpiryRequest::InDays),
        allowed: Capabilities::everything(),
        scopes: vec![match args.scope {
            ManagementScope::Admin => Scope::admin(),
            ManagementScope::Verify => Scope::verify(),
            ManagementScope::RevokeLeaked => Scope::revoke_leaked(),
        }],
        limits: Default::default(),
    };
    let cap = TenantCaps::of(&state.config).keys;
    let issued = keys::create(
        state.pool(),
        &state.peppers,
        &tenant,
        new,
        cap,
        &Actor::Cli,
        state.now(),
    )
    .await?;
    let expires_at = issued.row.expires_at.rfc3339();
    if args.json {
        let out = serde_json::json!({"id": issued.row.id, "key": issued.key.expose(), "expires_at": expires_at});
        return say(format_args!("{out}"));
    }
    say(format_args!(
        "{}\n\nThis is the only time the key is shown. Key id {}, expires {expires_at}.",
        issued.key.expose(),
        issued.row.id
    ))
}

/// The service user that owns the tenant's management keys, created on
/// first use; one owner for all of them: the latest named.
async fn management_owner(
    state: &AppState,
    tenant: &Tenant,
    owner_email: Email,
) -> anyhow::Result<ServiceUser> {
    let (pool, now) = (state.pool(), state.now());
    let existing = service_users::find_by_name(pool, &tenant.id, service_users::MANAGEMENT).await?;
    match existing {
        Some(owner) if owner.owner_email.as_deref() == Some(owner_email.as_str()) => Ok(owner),
        Some(owner) => {
            let change = service_users::ServiceUserChange {
                owner_email: Some(owner_email),
                ..Default::default()
            };
            Ok(
                service_users::update(pool, &tenant.id, &owner.id, change, &Actor::Cli, now)
                    .await?,
            )
        }
        None => {
            let new = NewServiceUser {
                name: Name::parse("name", service_users::MANAGEMENT)?,
                owner_email: Some(owner_email),
                description: Description::parse(
                    "Owns the tenant's management keys (keysmith management-key create)",
                )?,
            };
            let cap = TenantCaps::of(&state.config).service_users;
            Ok(service_users::create(pool, &tenant.id, new, cap, &Actor::Cli, now).await?)
        }
    }
}
