//! `keysmith user …`: admin accounts (people who sign in to the admin UI).

use std::collections::HashMap;

use serde::Serialize;

use super::{
    output::{Listing, Table, json, or_dash, say},
    password::read_password,
    tenants::by_slug,
};
use crate::{
    domain::{
        Actor, Email, accounts, tenants, totp,
        users::{self, Password, Role},
    },
    state::AppState,
};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// List every admin account, with its roles in tenants.
    List {
        /// Print `{"items": [{"email", "superadmin", "disabled_at",
        /// "must_change_password", "totp", "roles": [{"tenant", "role"}]}]}`.
        #[arg(long)]
        json: bool,
    },
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

impl UserCommand {
    pub async fn run(self, state: &AppState) -> anyhow::Result<()> {
        let (pool, now) = (state.pool(), state.now());
        match self {
            Self::List { json } => list(state, json).await,
            Self::Create {
                email,
                superadmin,
                tenant,
                role,
            } => create(state, &email, superadmin, tenant.as_deref(), role).await,
            Self::Disable { email } => {
                accounts::set_disabled(pool, &email, true, &Actor::Cli, now).await?;
                say(format_args!("disabled {email}; its sessions have ended"))
            }
            Self::Enable { email } => {
                accounts::set_disabled(pool, &email, false, &Actor::Cli, now).await?;
                say(format_args!("enabled {email}"))
            }
            Self::ResetTotp { email } => {
                totp::reset(pool, &email, &Actor::Cli, now).await?;
                say(format_args!("turned off two-factor sign-in for {email}"))
            }
            Self::ResetPassword { email } => {
                let temporary = Password::parse(read_password().await?)?;
                accounts::reset_password(pool, &email, temporary, &Actor::Cli, now).await?;
                say(format_args!(
                    "reset the password of {email}; it must choose a new one at its next sign-in"
                ))
            }
        }
    }
}

async fn create(
    state: &AppState,
    email: &str,
    superadmin: bool,
    tenant: Option<&str>,
    role: Option<Role>,
) -> anyhow::Result<()> {
    let (pool, now) = (state.pool(), state.now());
    let email = Email::parse(email)?;
    // Every argument is checked before the password is asked for.
    let tenant = match tenant {
        Some(slug) => Some(by_slug(state, slug).await?),
        None => None,
    };
    let password = Password::parse(read_password().await?)?;
    let user = users::create(pool, &email, password, superadmin, now).await?;
    if let (Some(tenant), Some(role)) = (&tenant, role) {
        users::grant(pool, &tenant.id, &user.id, role, now).await?;
        return say(format_args!(
            "created {} with role {} in {}",
            user.email,
            role.as_str(),
            tenant.slug
        ));
    }
    let badge = if superadmin { " (superadmin)" } else { "" };
    say(format_args!("created {}{badge}", user.email))
}

/// An admin account as `keysmith user list --json` prints it. No API lists
/// accounts (they are instance-wide, a superadmin's business), so this
/// shape is the command line's own; README documents it.
#[derive(Debug, Serialize)]
struct Account {
    email: String,
    superadmin: bool,
    /// RFC 3339; `null`: the account may sign in.
    disabled_at: Option<String>,
    /// It signs in with a temporary password it must replace.
    must_change_password: bool,
    /// Whether it signs in with a second factor (TOTP).
    totp: bool,
    roles: Vec<AccountRole>,
}

#[derive(Debug, Serialize)]
struct AccountRole {
    /// Tenant slug.
    tenant: String,
    /// `viewer`, `admin` or `owner`.
    role: String,
}

async fn list(state: &AppState, as_json: bool) -> anyhow::Result<()> {
    let pool = state.pool();
    let slugs: HashMap<_, _> = tenants::list(pool)
        .await?
        .into_iter()
        .map(|t| (t.id, t.slug))
        .collect();
    // By email: it is unique, and what the memberships query reads.
    let mut roles: HashMap<String, Vec<AccountRole>> = HashMap::new();
    for m in users::tenant_admins(pool).await? {
        let tenant = slugs.get(&m.tenant_id).cloned().unwrap_or_default();
        roles.entry(m.email).or_default().push(AccountRole {
            tenant,
            role: m.role,
        });
    }
    let accounts: Vec<Account> = accounts::list(pool)
        .await?
        .into_iter()
        .map(|a| Account {
            roles: roles.remove(&a.email).unwrap_or_default(),
            email: a.email,
            superadmin: a.is_superadmin != 0,
            disabled_at: a.disabled_at.map(|t| t.rfc3339()),
            must_change_password: a.must_change_password != 0,
            totp: a.totp_enabled_at.is_some(),
        })
        .collect();
    if as_json {
        return json(&Listing::whole(accounts));
    }
    let mut table = Table::new(&["EMAIL", "SUPERADMIN", "STATUS", "2FA", "ROLES"]);
    for a in accounts {
        let roles: Vec<String> = a
            .roles
            .iter()
            .map(|r| format!("{}:{}", r.tenant, r.role))
            .collect();
        table.row(vec![
            a.email,
            if a.superadmin { "yes" } else { "-" }.to_owned(),
            if a.disabled_at.is_some() {
                "disabled"
            } else {
                "enabled"
            }
            .to_owned(),
            if a.totp { "on" } else { "off" }.to_owned(),
            or_dash((!roles.is_empty()).then(|| roles.join(", "))),
        ]);
    }
    table.print()
}
