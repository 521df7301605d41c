//! `keysmith key …`: a tenant's API keys, through the same domain functions
//! as `/api/v1/tenants/{tenant}/keys` (audit rows, webhooks and owner emails
//! alike, the actor recorded as `cli`), printed in the API's JSON shapes
//! with `--json`.

use keysmith_verify::KeyState;

use super::{
    args::{Expiry, InTenant, in_flag_words, key_id, service_user_id},
    output::{Fields, Table, json, or_dash, say, short_time},
    tenants::limit_arg,
};
use crate::{
    domain::{
        Actor, Name, Scope,
        caps::TenantCaps,
        keys::{self, ExpiryRequest, KeyFilter, NewKey},
        page,
    },
    routes::api::model::{CreatedKey, KeyInfo, KeyList, RotationResponse},
    state::AppState,
};

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// List the tenant's keys, newest first, a page at a time.
    List(ListArgs),
    /// Show one key (never its secret: Keysmith keeps only a keyed hash).
    Show(IdArgs),
    /// Create a key for a service user and print it, the only time it is shown.
    Create(CreateArgs),
    /// Replace a key: a new key now (printed once); the old one keeps working
    /// for the tenant's rotation overlap (7 days by default), then is revoked.
    Rotate(RotateArgs),
    /// Revoke a key at once: it is refused from its next request.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The key's id (not the key itself).
    id: String,
    #[command(flatten)]
    scope: InTenant,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    scope: InTenant,
    #[arg(long, value_enum)]
    status: Option<Status>,
    /// Only the keys of this service user (its id).
    #[arg(long)]
    service_user: Option<String>,
    /// Keys per page, 1 to 200 (default 50).
    #[arg(long)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Status {
    Active,
    Rotating,
    Expired,
    Revoked,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    scope: InTenant,
    /// The service user (id) the key is issued to.
    #[arg(long)]
    service_user: String,
    /// What the key is for, e.g. `ci-deploy`.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    expiry: Expiry,
    /// A tool the key may call, or `prefix*` (repeatable). Naming any tool,
    /// resource or prompt limits the key to what is named.
    #[arg(long = "tool")]
    tools: Option<Vec<String>>,
    /// A resource URI the key may read, or `prefix*` (repeatable).
    #[arg(long = "resource")]
    resources: Option<Vec<String>>,
    /// A prompt the key may get, or `prefix*` (repeatable).
    #[arg(long = "prompt")]
    prompts: Option<Vec<String>>,
    /// A scope the key carries, e.g. `keysmith:verify` (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// As in the API: `'{"per_minute": 600}'`.
    #[arg(long)]
    rate_limit: Option<String>,
    /// As in the API: `'{"calls": 10000, "per": "day"}'`.
    #[arg(long)]
    quota: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    key: IdArgs,
    /// The new key's lifetime; by default the old key's lifetime again.
    #[command(flatten)]
    expiry: Expiry,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    key: IdArgs,
    /// Why, as the audit log and the key's page show it.
    #[arg(long, default_value = "revoked")]
    reason: String,
}

impl KeyCommand {
    pub async fn run(self, state: &AppState) -> anyhow::Result<()> {
        match self {
            Self::List(args) => list(state, args).await,
            Self::Show(args) => show(state, args).await,
            Self::Create(args) => create(state, args).await,
            Self::Rotate(args) => rotate(state, args).await,
            Self::Revoke(args) => revoke(state, args).await,
        }
    }
}

async fn list(state: &AppState, args: ListArgs) -> anyhow::Result<()> {
    let filter = KeyFilter {
        status: args.status.map(|s| match s {
            Status::Active => KeyState::Active,
            Status::Rotating => KeyState::Rotating,
            Status::Expired => KeyState::Expired,
            Status::Revoked => KeyState::Revoked,
        }),
        service_user_id: args
            .service_user
            .as_deref()
            .map(service_user_id)
            .transpose()?,
    };
    let limit = page::limit(args.limit).map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
    let tenant = args.scope.load(state).await?;
    let now = state.now();
    let cursor = args.cursor.as_deref();
    let page = keys::list(state.pool(), &tenant.id, &filter, cursor, limit, now).await?;
    let out = KeyList {
        items: page
            .items
            .iter()
            .map(|row| KeyInfo::new(row, &tenant.slug, now))
            .collect(),
        next_cursor: page.next_cursor,
    };
    if args.scope.json {
        return json(&out);
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "SERVICE USER",
        "STATUS",
        "HINT",
        "EXPIRES",
        "LAST USED",
    ]);
    for key in &out.items {
        table.row(vec![
            key.id.clone(),
            key.name.clone(),
            key.service_user_id.clone(),
            key.status.as_str().to_owned(),
            format!("…{}", key.hint),
            short_time(&key.expires_at),
            or_dash(key.last_used_at.as_deref().map(short_time)),
        ]);
    }
    table.print()?;
    next_page_hint(out.next_cursor.as_deref())
}

/// Tells a person (on standard error, so piped output stays a table) how
/// to read on.
pub fn next_page_hint(cursor: Option<&str>) -> anyhow::Result<()> {
    if let Some(cursor) = cursor {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "more: add --cursor {cursor}");
    }
    Ok(())
}

async fn show(state: &AppState, args: IdArgs) -> anyhow::Result<()> {
    let id = key_id(&args.id)?;
    let tenant = args.scope.load(state).await?;
    let row = keys::get(state.pool(), &tenant.id, &id).await?;
    let info = KeyInfo::new(&row, &tenant.slug, state.now());
    if args.scope.json {
        return json(&info);
    }
    key_fields(&info).print()
}

fn key_fields(key: &KeyInfo) -> Fields {
    // `null`: every one of the kind; `[]`: none (the key names another kind only).
    let list = |l: &Option<Vec<String>>| match l.as_deref() {
        None => "any".to_owned(),
        Some([]) => "none".to_owned(),
        Some(l) => l.join(", "),
    };
    let mut fields = Fields::default();
    fields.add("id", &key.id);
    fields.add("name", &key.name);
    fields.add("tenant", &key.tenant);
    fields.add("service user", &key.service_user_id);
    fields.add("status", key.status.as_str());
    fields.add("hint", &format!("…{}", key.hint));
    fields.add("tools", &list(&key.allowed_tools));
    fields.add("resources", &list(&key.allowed_resources));
    fields.add("prompts", &list(&key.allowed_prompts));
    fields.add(
        "scopes",
        &or_dash((!key.scopes.is_empty()).then(|| key.scopes.join(", "))),
    );
    fields.add(
        "created",
        &format!("{} by {}", key.created_at, key.created_by),
    );
    fields.add("expires", &key.expires_at);
    fields.add_some("cutoff", key.cutoff_at.as_deref());
    fields.add_some("revoked", key.revoked_at.as_deref());
    fields.add_some("reason", key.revoked_reason.as_deref());
    fields.add_some("rotated from", key.rotated_from.as_deref());
    fields.add_some("rotated to", key.rotated_to.as_deref());
    fields.add("last used", &or_dash(key.last_used_at.as_deref()));
    fields
}

async fn create(state: &AppState, args: CreateArgs) -> anyhow::Result<()> {
    let new = NewKey {
        service_user_id: service_user_id(&args.service_user)?,
        name: Name::parse("name", &args.name)?,
        expiry: args
            .expiry
            .request()?
            .unwrap_or(ExpiryRequest::TenantDefault),
        allowed: keys::capabilities(
            args.tools.as_deref(),
            args.resources.as_deref(),
            args.prompts.as_deref(),
        )
        .map_err(in_flag_words)?,
        scopes: args
            .scopes
            .iter()
            .map(|s| Scope::parse(s).map_err(in_flag_words))
            .collect::<anyhow::Result<_>>()?,
        limits: keys::limits(
            limit_arg("--rate-limit", args.rate_limit)?.flatten(),
            limit_arg("--quota", args.quota)?.flatten(),
        )?,
    };
    let tenant = args.scope.load(state).await?;
    let now = state.now();
    let cap = TenantCaps::of(&state.config).keys;
    let issued = keys::create(
        state.pool(),
        &state.peppers,
        &tenant,
        new,
        cap,
        &Actor::Cli,
        now,
    )
    .await
    .map_err(in_flag_words)?;
    let created = CreatedKey::new(&issued, &tenant.slug, now);
    if args.scope.json {
        return json(&created);
    }
    say(format_args!(
        "{}\n\nThis is the only time the key is shown. Key id {}, expires {}.",
        created.key, created.info.id, created.info.expires_at
    ))
}

async fn rotate(state: &AppState, args: RotateArgs) -> anyhow::Result<()> {
    let id = key_id(&args.key.id)?;
    let expiry = args.expiry.request()?;
    let tenant = args.key.scope.load(state).await?;
    let now = state.now();
    let cap = TenantCaps::of(&state.config).keys;
    let rotation = keys::rotate(
        state.pool(),
        &state.peppers,
        &tenant,
        &id,
        expiry,
        cap,
        &Actor::Cli,
        now,
    )
    .await
    .map_err(in_flag_words)?;
    let out = RotationResponse::new(&rotation, &tenant.slug, now);
    if args.key.scope.json {
        return json(&out);
    }
    say(format_args!(
        "{}\n\nThis is the only time the new key is shown. Key id {}, expires {}.\nThe old key {} keeps working until {}, then it is revoked.",
        out.new.key, out.new.info.id, out.new.info.expires_at, out.old.id, out.old.expires_at
    ))
}

async fn revoke(state: &AppState, args: RevokeArgs) -> anyhow::Result<()> {
    let id = key_id(&args.key.id)?;
    let reason = Name::parse("--reason", &args.reason)?;
    let tenant = args.key.scope.load(state).await?;
    let now = state.now();
    let row = keys::revoke(
        state.pool(),
        &tenant,
        &id,
        reason.as_str(),
        &Actor::Cli,
        now,
    )
    .await?;
    let info = KeyInfo::new(&row, &tenant.slug, now);
    if args.key.scope.json {
        return json(&info);
    }
    say(format_args!(
        "revoked key {} ({}): it is refused from now on",
        info.id,
        info.revoked_reason.as_deref().unwrap_or("revoked")
    ))
}
