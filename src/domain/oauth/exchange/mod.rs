//! Tokens for a grant: an access token and a refresh token, issued when a
//! code is redeemed and again on every refresh. Refresh tokens rotate: the
//! one presented is spent by one conditional update, and a spent one
//! presented again (stolen, or replayed) ends the whole grant.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::{
    MAX_LIVE_TOKENS_PER_KEY, grants,
    tokens::{self, NewToken},
};
use crate::{
    db::{begin_write, row_lock},
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
async fn lock_grant(
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

/// The refresh token's row, as its rotation reads it.
#[derive(sqlx::FromRow)]
struct RefreshRow {
    secret_hash: String,
    pepper_version: i64,
    prefix: String,
    grant_id: Option<String>,
    client_id: String,
    expires_at: UnixTime,
}

/// What a refresh request presented.
#[derive(Debug)]
pub struct Refresh<'a> {
    pub token: &'a OAuthToken,
    pub client_id: &'a str,
    /// Canonical; must be the grant's when given.
    pub resource: Option<&'a str>,
    /// Within the grant's scopes when given (RFC 6749 §6).
    pub scopes: Option<&'a ScopeSet>,
}

/// Rotates a refresh token: spends it and issues a new pair. A refresh
/// token already spent (or revoked) ends its grant: whoever holds the other
/// copy loses it too (OAuth 2.1 §4.3.1).
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, token_id = refresh.token.token_id()))]
pub async fn refresh(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    refresh: Refresh<'_>,
    now: OffsetDateTime,
) -> DomainResult<Result<TokenPair, GrantRefused>> {
    let unknown = || Ok(Err(GrantRefused::invalid("unknown refresh token")));
    let mut tx = begin_write(pool).await?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT secret_hash, pepper_version, prefix, grant_id, client_id, expires_at FROM oauth_tokens \
         WHERE id = $1 AND tenant_id = $2 AND kind = 'refresh'",
    )
    .bind(refresh.token.token_id())
    .bind(&tenant.id)
    .fetch_optional(&mut *tx)
    .await?;
    // The HMAC runs whether or not the row exists.
    let matches = peppers.matches(
        row.as_ref()
            .map(|r| (r.secret_hash.as_str(), r.pepper_version)),
        refresh.token.secret(),
    );
    let Some(row) = row.filter(|r| matches && r.prefix == refresh.token.prefix()) else {
        return unknown();
    };
    let Some(grant_id) = row.grant_id.as_deref() else {
        return unknown();
    };
    if row.client_id != refresh.client_id {
        return Ok(Err(GrantRefused::invalid(
            "the refresh token was issued to another client",
        )));
    }
    let at = UnixTime::from(now);
    lock_grant(&mut tx, pool, tenant, grant_id).await?;
    let spent = sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(refresh.token.token_id())
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    if spent.rows_affected() != 1 {
        return reused(tx, pool, tenant, grant_id, &row.client_id, now).await;
    }
    if row.expires_at <= at {
        tx.commit().await?;
        return Ok(Err(GrantRefused::invalid("the refresh token expired")));
    }
    let grant: Option<(String, String)> = sqlx::query_as(
        "SELECT resource, scopes FROM oauth_grants WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&tenant.id)
    .bind(grant_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((resource, scopes)) = grant else {
        return unknown();
    };
    if refresh.resource.is_some_and(|asked| asked != resource) {
        tx.commit().await?;
        return Ok(Err(GrantRefused::invalid(
            "resource must be the grant's own",
        )));
    }
    if let Some(asked) = refresh.scopes {
        let granted = ScopeSet::from_storage(&scopes);
        if asked.within(|kind| Some(granted.patterns(kind))).is_err() {
            return Ok(Err(GrantRefused::BeyondGrant));
        }
    }
    let pair = issue(
        &mut tx,
        pool,
        peppers,
        tenant,
        Exchange {
            grant_id,
            client_id: &row.client_id,
            scopes: refresh.scopes,
            grant_type: "refresh_token",
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(pair)
}

/// A spent refresh token came back: end the grant (if not ended already).
async fn reused(
    mut tx: Transaction<'static, Any>,
    pool: &AnyPool,
    tenant: &Tenant,
    grant_id: &str,
    client_id: &str,
    now: OffsetDateTime,
) -> DomainResult<Result<TokenPair, GrantRefused>> {
    let found: Option<(ServiceUserId, KeyId)> = sqlx::query_as(
        "SELECT service_user_id, key_id FROM oauth_grants WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&tenant.id)
    .bind(grant_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((service_user_id, key_id)) = found {
        let actor = client_actor(client_id);
        let ended = grants::end(
            &mut tx,
            pool,
            grants::Ending {
                tenant_id: &tenant.id,
                grant_id,
                key: (&key_id, &service_user_id),
                reason: "refresh token reused",
                action: "oauth.refresh_reuse",
                actor: &actor,
            },
            now,
        )
        .await?;
        if ended {
            tracing::warn!(grant_id, "refresh token reused: grant revoked");
        }
    }
    tx.commit().await?;
    Ok(Err(GrantRefused::invalid(
        "the refresh token was already used; its grant is revoked",
    )))
}

/// RFC 7009 for a client of the authorization-code flow: its access token
/// is revoked; its refresh token ends the whole grant (§2.1: the access
/// tokens of the same grant go with it). Anything else (another client's,
/// another tenant's, a wrong secret) is silently ignored.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, token_id = token.token_id()))]
pub async fn revoke_by_client(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    client_id: &str,
    token: &OAuthToken,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = begin_write(pool).await?;
    let row: Option<(String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT secret_hash, pepper_version, kind, grant_id FROM oauth_tokens \
         WHERE id = $1 AND tenant_id = $2 AND client_id = $3",
    )
    .bind(token.token_id())
    .bind(&tenant.id)
    .bind(client_id)
    .fetch_optional(&mut *tx)
    .await?;
    let matches = peppers.matches(
        row.as_ref()
            .map(|(hash, version, ..)| (hash.as_str(), *version)),
        token.secret(),
    );
    let Some((_, _, kind, Some(grant_id))) = row.filter(|_| matches) else {
        return Ok(());
    };
    lock_grant(&mut tx, pool, tenant, &grant_id).await?;
    if kind == TokenKind::Refresh.as_str() {
        let found: Option<(ServiceUserId, KeyId)> = sqlx::query_as(
            "SELECT service_user_id, key_id FROM oauth_grants WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant.id)
        .bind(&grant_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((service_user_id, key_id)) = found {
            let actor = client_actor(client_id);
            grants::end(
                &mut tx,
                pool,
                grants::Ending {
                    tenant_id: &tenant.id,
                    grant_id: &grant_id,
                    key: (&key_id, &service_user_id),
                    reason: "revoked by its client",
                    action: "oauth.revoke",
                    actor: &actor,
                },
                now,
            )
            .await?;
        }
    } else {
        let (key_id,): (String,) =
            sqlx::query_as("SELECT key_id FROM oauth_tokens WHERE id = $1 AND tenant_id = $2")
                .bind(token.token_id())
                .bind(&tenant.id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(UnixTime::from(now))
        .bind(token.token_id())
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
        crate::db::announce_key_change(&mut tx, pool, &key_id).await?;
    }
    tx.commit().await?;
    Ok(())
}
