//! `keysmith service-user …`: the machine identities of a tenant that keys
//! are issued to, through the same domain functions as
//! `/api/v1/tenants/{tenant}/service-users` (audited, actor `cli`).

use super::{
    args::{InTenant, service_user_id},
    keys::next_page_hint,
    output::{Fields, Table, json, or_dash, say, short_time},
};
use crate::{
    domain::{
        Actor, Description, Email, Name,
        tenancy::caps::TenantCaps,
        tenancy::service_users::{self, NewServiceUser},
        values::page,
    },
    routes::api::service_users::{ServiceUserInfo, ServiceUserList},
    state::AppState,
};

#[derive(Debug, clap::Subcommand)]
pub enum ServiceUserCommand {
    /// List the tenant's service users, newest first, a page at a time.
    List(ListArgs),
    /// Show one service user.
    Show(IdArgs),
    /// Create a service user (a machine identity keys are issued to).
    Create(CreateArgs),
    /// Disable a service user: every key of it is refused at once.
    Disable(IdArgs),
    /// Enable a disabled service user again: its keys that are still
    /// valid work again.
    Enable(IdArgs),
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The service user's id.
    id: String,
    #[command(flatten)]
    scope: InTenant,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    scope: InTenant,
    /// Service users per page, 1 to 200 (default 50).
    #[arg(long)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    scope: InTenant,
    /// A name unique in the tenant, e.g. `billing-bot`.
    #[arg(long)]
    name: String,
    /// Who is emailed when its keys are rotated or about to expire.
    #[arg(long)]
    owner_email: String,
    #[arg(long)]
    description: Option<String>,
}

impl ServiceUserCommand {
    pub async fn run(self, state: &AppState) -> anyhow::Result<()> {
        match self {
            Self::List(args) => list(state, args).await,
            Self::Show(args) => show(state, args).await,
            Self::Create(args) => create(state, args).await,
            Self::Disable(args) => set_disabled(state, args, true).await,
            Self::Enable(args) => set_disabled(state, args, false).await,
        }
    }
}

async fn list(state: &AppState, args: ListArgs) -> anyhow::Result<()> {
    let limit = page::limit(args.limit).map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
    let tenant = args.scope.load(state).await?;
    let cursor = args.cursor.as_deref();
    let page = service_users::list(state.pool(), &tenant.id, cursor, limit).await?;
    let out = ServiceUserList {
        items: page.items.into_iter().map(ServiceUserInfo::from).collect(),
        next_cursor: page.next_cursor,
    };
    if args.scope.json {
        return json(&out);
    }
    let mut table = Table::new(&["ID", "NAME", "OWNER", "STATUS", "CREATED"]);
    for user in &out.items {
        table.row(vec![
            user.id.to_string(),
            user.name.clone(),
            or_dash(user.owner_email.as_deref()),
            status(user).to_owned(),
            short_time(&user.created_at.rfc3339()),
        ]);
    }
    table.print()?;
    next_page_hint(out.next_cursor.as_deref())
}

fn status(user: &ServiceUserInfo) -> &'static str {
    if user.disabled_at.is_some() {
        "disabled"
    } else {
        "enabled"
    }
}

fn print(user: &ServiceUserInfo, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(user);
    }
    let mut fields = Fields::default();
    fields.add("id", user.id.as_str());
    fields.add("name", &user.name);
    fields.add("owner", &or_dash(user.owner_email.as_deref()));
    fields.add_some("description", user.description.as_deref());
    fields.add("status", status(user));
    fields.add_some("disabled", user.disabled_at.map(|t| t.rfc3339()).as_deref());
    fields.add("created", &user.created_at.rfc3339());
    fields.print()
}

async fn show(state: &AppState, args: IdArgs) -> anyhow::Result<()> {
    let id = service_user_id(&args.id)?;
    let tenant = args.scope.load(state).await?;
    let user = service_users::get(state.pool(), &tenant.id, &id).await?;
    print(&user.into(), args.scope.json)
}

async fn create(state: &AppState, args: CreateArgs) -> anyhow::Result<()> {
    let new = NewServiceUser {
        name: Name::parse("--name", &args.name)?,
        owner_email: Some(Email::parse(&args.owner_email)?),
        description: args
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?
            .flatten(),
    };
    let tenant = args.scope.load(state).await?;
    let cap = TenantCaps::of(&state.config).service_users;
    let user =
        service_users::create(state.pool(), &tenant.id, new, cap, &Actor::Cli, state.now()).await?;
    if args.scope.json {
        return json(&ServiceUserInfo::from(user));
    }
    say(format_args!(
        "created service user {} ({})",
        user.name, user.id
    ))
}

async fn set_disabled(state: &AppState, args: IdArgs, disabled: bool) -> anyhow::Result<()> {
    let id = service_user_id(&args.id)?;
    let tenant = args.scope.load(state).await?;
    let (pool, now) = (state.pool(), state.now());
    let user =
        service_users::set_disabled(pool, &tenant.id, &id, disabled, &Actor::Cli, now).await?;
    if args.scope.json {
        return json(&ServiceUserInfo::from(user));
    }
    let done = if disabled {
        "disabled; its keys are refused from now on"
    } else {
        "enabled"
    };
    say(format_args!("{} ({}) {done}", user.name, user.id))
}
