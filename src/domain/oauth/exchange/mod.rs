//! Tokens for a grant: an access token and a refresh token, issued when a
//! code is redeemed and again on every refresh. Refresh tokens rotate: the
//! one presented is spent by one conditional update, and a spent one
//! presented again (stolen, or replayed) ends the whole grant.

mod revocation;
mod rotation;

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

pub use self::{
    revocation::revoke_by_client,
    rotation::{Refresh, refresh},
};
use super::{
    MAX_LIVE_TOKENS_PER_KEY,
    tokens::{self, NewToken},
};
use crate::{
    db::row_lock,
    domain::error::DomainResult,
    domain::{KeyId, ServiceUserId, UnixTime, audit, tenancy::tenants::Tenant},
};
use keysmith_verify::{KeyPrefix, OAuthToken, Peppers, TokenKind, scope::ScopeSet};

/// Why the token endpoint refuses a code or a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRefused {
    /// `invalid_grant`, with the `error_description`.
    Invalid(&'static str),
    /// The scope asked at refresh goes beyond the grant (`invalid_scope`).
    BeyondGrant,
    /// The grant's key already holds its maximum of live access tokens.
    TooManyLive,
}

impl GrantRefused {
    pub fn invalid(why: &'static str) -> Self {
        Self::Invalid(why)
    }
}

/// A fresh pair; the plaintexts exist only here.
#[derive(Debug)]
pub struct TokenPair {
    pub access: OAuthToken,
    pub access_expires_at: OffsetDateTime,
    pub refresh: OAuthToken,
    pub scope: String,
}

/// The audit log's name for a client of the authorization-code flow.
pub fn client_actor(client_id: &str) -> String {
    let shown: String = client_id.chars().take(200).collect();
    format!("oauth_client:{shown}")
}

pub(crate) struct Exchange<'a> {
    pub grant_id: &'a str,
    pub client_id: &'a str,
    /// Narrower than the grant's (a refresh may ask for less); `None`: all.
    pub scopes: Option<&'a ScopeSet>,
    pub grant_type: &'a str,
}

/// What issuing needs to know of a grant.
#[derive(sqlx::FromRow)]
struct Usable {
    key_id: KeyId,
    service_user_id: ServiceUserId,
    resource: String,
    scopes: String,
    refresh_until: UnixTime,
    revoked_at: Option<UnixTime>,
    key_status: String,
    key_expires_at: UnixTime,
    service_user_disabled_at: Option<UnixTime>,
}

/// Issues a pair for the grant inside `tx` (the caller commits), unless the
/// grant, its key or its service user no longer works. Audited
/// `oauth.token` under the grant's key.
pub(crate) async fn issue(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    exchange: Exchange<'_>,
    now: OffsetDateTime,
) -> DomainResult<Result<TokenPair, GrantRefused>> {
    let grant: Option<Usable> = sqlx::query_as(&format!(
        "SELECT g.key_id, g.service_user_id, g.resource, g.scopes, g.refresh_until, g.revoked_at, \
         k.status AS key_status, k.expires_at AS key_expires_at, s.disabled_at AS service_user_disabled_at \
         FROM oauth_grants g JOIN api_keys k ON k.id = g.key_id JOIN service_users s ON s.id = g.service_user_id \
         WHERE g.tenant_id = $1 AND g.id = $2{}",
        grant_lock(pool)
    ))
    .bind(&tenant.id)
    .bind(exchange.grant_id)
    .fetch_optional(&mut **tx)
    .await?;
    let at = UnixTime::from(now);
    let Some(grant) = grant.filter(|g| {
        g.revoked_at.is_none()
            && g.key_status == "active"
            && g.key_expires_at > at
            && g.refresh_until > at
            && g.service_user_disabled_at.is_none()
    }) else {
        return Ok(Err(GrantRefused::invalid(
            "the grant was revoked or has ended; ask the person to connect again",
        )));
    };
    // The grant's row lock (PostgreSQL; SQLite's write lock otherwise)
    // serializes issuance per grant (one key each), so the cap holds in a burst.
    if tokens::live_access_tokens(tx, grant.key_id.as_str(), now).await? >= MAX_LIVE_TOKENS_PER_KEY
    {
        return Ok(Err(GrantRefused::TooManyLive));
    }
    let granted = ScopeSet::from_storage(&grant.scopes);
    let scopes = exchange.scopes.unwrap_or(&granted);
    let prefix = KeyPrefix::parse(&tenant.key_prefix).unwrap_or_default();
    let end = grant.refresh_until.to_datetime();
    let access_expires_at =
        (now + time::Duration::minutes(tenant.oauth_access_token_minutes)).min(end);
    let refresh_expires_at = (now + time::Duration::days(tenant.oauth_refresh_idle_days)).min(end);
    let new = |kind, expires_at| NewToken {
        tenant_id: tenant.id.as_str(),
        key_id: grant.key_id.as_str(),
        grant_id: Some(exchange.grant_id),
        kind,
        prefix: &prefix,
        client_id: exchange.client_id,
        resource: &grant.resource,
        scopes: Some(scopes),
        expires_at,
    };
    let access =
        tokens::insert(tx, peppers, new(TokenKind::Access, access_expires_at), now).await?;
    let refresh = tokens::insert(
        tx,
        peppers,
        new(TokenKind::Refresh, refresh_expires_at),
        now,
    )
    .await?;
    sqlx::query("UPDATE oauth_grants SET last_used_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(at)
        .bind(&tenant.id)
        .bind(exchange.grant_id)
        .execute(&mut **tx)
        .await?;
    let subject = format!(
        "token {} of grant {} for {}",
        access.token_id(),
        exchange.grant_id,
        grant.resource
    );
    audit::record(
        &mut **tx,
        audit::NewAuditEvent {
            tenant_id: &tenant.id,
            key_id: Some(&grant.key_id),
            service_user_id: Some(&grant.service_user_id),
            actor: client_actor(exchange.client_id),
            action: "oauth.token",
            tool: Some(&subject),
            outcome: "ok",
            reason: Some(exchange.grant_type),
            request_id: None,
            at: now,
        },
    )
    .await?;
    Ok(Ok(TokenPair {
        access,
        access_expires_at,
        refresh,
        scope: scopes.to_string(),
    }))
}

/// Locks only the grant's row of a joined read (PostgreSQL). Every writer
/// that touches a grant and its key or tokens takes the grant first (here,
/// `grants::end`, a key's revocation), so two of them never wait on each
/// other in opposite orders.
fn grant_lock(pool: &AnyPool) -> &'static str {
    if row_lock(pool).is_empty() {
        ""
    } else {
        " FOR UPDATE OF g"
    }
}

/// Takes the grant's row lock first (see [`grant_lock`]).
pub(super) async fn lock_grant(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    tenant: &Tenant,
    grant_id: &str,
) -> DomainResult<()> {
    sqlx::query(&format!(
        "SELECT id FROM oauth_grants WHERE tenant_id = $1 AND id = $2{}",
        row_lock(pool)
    ))
    .bind(&tenant.id)
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(())
}
