//! Refresh-token rotation: the token presented is spent by one conditional
//! update and a new pair issued; a spent one presented again ends the grant.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::{Exchange, GrantRefused, TokenPair, issue, lock_grant, revocation::end_for_client};
use crate::{
    db::begin_write,
    domain::error::DomainResult,
    domain::{UnixTime, tenancy::tenants::Tenant},
};
use keysmith_verify::{OAuthToken, Peppers, scope::ScopeSet};

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
    let why = ("refresh token reused", "oauth.refresh_reuse");
    if end_for_client(&mut tx, pool, tenant, grant_id, client_id, why, now).await? {
        tracing::warn!(grant_id, "refresh token reused: grant revoked");
    }
    tx.commit().await?;
    Ok(Err(GrantRefused::invalid(
        "the refresh token was already used; its grant is revoked",
    )))
}
