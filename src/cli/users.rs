//! `keysmith user …`: admin accounts (people who sign in to the admin UI).

use super::{output::say, password::read_password, tenants::by_slug};
use crate::{
    domain::{
        Actor, Email, accounts, totp,
        users::{self, Password, Role},
    },
    state::AppState,
};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
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
