//! Authorization codes: random, only a SHA-256 kept, single-use (one
//! conditional update marks it used, so of a concurrent burst exactly one
//! redeems it), alive [`CODE_LIFETIME`], bound to the PKCE challenge, the
//! client, the redirect URI and the resource. A code presented again after
//! its use ends its grant (OAuth 2.1 §4.1.3: it was stolen, or replayed).

use std::fmt;

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::{
    exchange::{self, Exchange, GrantRefused, TokenPair},
    grants, pending, pkce,
};
use crate::{
    db::begin_write,
    domain::error::DomainResult,
    domain::{
        KeyId, ServiceUserId, TenantId, UnixTime, crypto::random, crypto::secret_hash,
        tenancy::tenants::Tenant,
    },
};
use keysmith_verify::Peppers;

/// How long a code can be redeemed (the contract: at most 60 seconds).
pub const CODE_LIFETIME: time::Duration = time::Duration::seconds(60);

/// A plaintext code, on its way into the redirect; `Debug` hides it.
pub struct Code(String);

impl Code {
    fn generate() -> Self {
        Self(random::base62(43))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

pub(crate) struct NewCode<'a> {
    pub tenant_id: &'a TenantId,
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub resource: &'a str,
    pub code_challenge: &'a str,
}

pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    new: NewCode<'_>,
    now: OffsetDateTime,
) -> DomainResult<Code> {
    let code = Code::generate();
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, tenant_id, grant_id, client_id, redirect_uri, resource, \
         code_challenge, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(secret_hash(code.expose()))
    .bind(new.tenant_id)
    .bind(new.grant_id)
    .bind(new.client_id)
    .bind(new.redirect_uri)
    .bind(new.resource)
    .bind(new.code_challenge)
    .bind(UnixTime::from(now))
    .bind(UnixTime::from(now + CODE_LIFETIME))
    .execute(&mut **tx)
    .await?;
    Ok(code)
}

/// What the token request presented with the code.
#[derive(Debug)]
pub struct Redemption<'a> {
    pub code: &'a str,
    /// The authenticated client (or the public client's `client_id`).
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    /// Canonical; `None`: the code's own.
    pub resource: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    grant_id: String,
    client_id: String,
    redirect_uri: String,
    resource: String,
    code_challenge: String,
    used_at: Option<UnixTime>,
}

/// Redeems a code for an access and a refresh token, which makes its grant
/// live. The code is spent by the first attempt whatever its outcome (a
/// wrong verifier burns it too); a spent code presented again ends its grant.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, client_id = redemption.client_id))]
pub async fn redeem(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    redemption: Redemption<'_>,
    now: OffsetDateTime,
) -> DomainResult<Result<TokenPair, GrantRefused>> {
    let hash = secret_hash(redemption.code);
    let at = UnixTime::from(now);
    let mut tx = begin_write(pool).await?;
    let spent = sqlx::query(
        "UPDATE oauth_codes SET used_at = $1 \
         WHERE code_hash = $2 AND tenant_id = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(at)
    .bind(&hash)
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    let row: Option<CodeRow> = sqlx::query_as(
        "SELECT grant_id, client_id, redirect_uri, resource, code_challenge, used_at FROM oauth_codes \
         WHERE code_hash = $1 AND tenant_id = $2",
    )
    .bind(&hash)
    .bind(&tenant.id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(GrantRefused::invalid("unknown authorization code")));
    };
    if spent.rows_affected() != 1 {
        return replayed(tx, pool, tenant, &row, now).await;
    }
    if let Some(why) = mismatch(&row, &redemption) {
        // Spent all the same: a stolen code gets one guess.
        tx.commit().await?;
        return Ok(Err(GrantRefused::invalid(why)));
    }
    let pair = exchange::issue(
        &mut tx,
        pool,
        peppers,
        tenant,
        Exchange {
            grant_id: &row.grant_id,
            client_id: &row.client_id,
            scopes: None,
            grant_type: "authorization_code",
        },
        now,
    )
    .await?;
    if pair.is_ok() {
        // Live from now on: listed, and never swept as abandoned.
        pending::mark_redeemed(&mut tx, &tenant.id, &row.grant_id, now).await?;
    }
    tx.commit().await?;
    Ok(pair)
}

/// Why the presented parameters do not fit the code, if they do not.
fn mismatch(row: &CodeRow, redemption: &Redemption<'_>) -> Option<&'static str> {
    if row.client_id != redemption.client_id {
        return Some("the authorization code was issued to another client");
    }
    if redemption.redirect_uri != Some(row.redirect_uri.as_str()) {
        return Some("redirect_uri must be the one of the authorization request");
    }
    if redemption
        .resource
        .is_some_and(|resource| resource != row.resource)
    {
        return Some("resource must be the one of the authorization request");
    }
    match redemption.code_verifier {
        None => Some("code_verifier is required (PKCE)"),
        Some(verifier) if !pkce::verifier_matches(verifier, &row.code_challenge) => {
            Some("code_verifier does not match the code challenge")
        }
        Some(_) => None,
    }
}

/// A spent or expired code presented: an expired one is simply refused; a
/// spent one ends its grant, whose tokens were issued to whoever redeemed
/// it first.
async fn replayed(
    mut tx: Transaction<'static, Any>,
    pool: &AnyPool,
    tenant: &Tenant,
    row: &CodeRow,
    now: OffsetDateTime,
) -> DomainResult<Result<TokenPair, GrantRefused>> {
    if row.used_at.is_none() {
        return Ok(Err(GrantRefused::invalid("the authorization code expired")));
    }
    let found: Option<(ServiceUserId, KeyId)> = sqlx::query_as(
        "SELECT service_user_id, key_id FROM oauth_grants WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&tenant.id)
    .bind(&row.grant_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((service_user_id, key_id)) = found else {
        return Ok(Err(GrantRefused::invalid("unknown authorization code")));
    };
    let actor = exchange::client_actor(&row.client_id);
    let ended = grants::end(
        &mut tx,
        pool,
        grants::Ending {
            tenant_id: &tenant.id,
            grant_id: &row.grant_id,
            key: (&key_id, &service_user_id),
            reason: "authorization code replayed",
            action: "oauth.code_replay",
            actor: &actor,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    if ended {
        tracing::warn!(
            grant_id = row.grant_id,
            "authorization code replayed: grant revoked"
        );
    }
    Ok(Err(GrantRefused::invalid(
        "the authorization code was already used; its grant is revoked",
    )))
}

/// Forgets codes that expired more than a day ago (scheduler).
pub async fn purge_expired(pool: &AnyPool, now: OffsetDateTime) -> DomainResult<u64> {
    let cutoff = UnixTime::from(now - time::Duration::days(1));
    let done = sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
