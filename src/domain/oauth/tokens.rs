//! Access tokens: issued against a verified key (client credentials),
//! revoked by their client, purged once expired. Verification is the
//! verify crate's (`SqlVerifier`), by a join on the parent key.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::MAX_LIVE_TOKENS_PER_KEY;
use crate::{
    db::{announce_key_change, begin_write, row_lock},
    domain::{Actor, KeyId, ServiceUserId, TenantId, UnixTime, audit},
    error::AppResult,
};
use keysmith_verify::{KeyPrefix, OAuthToken, Peppers, TokenKind, VerifiedKey, scope::ScopeSet};

/// What a client asked for, once checked.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// The client's key, verified, and the prefix it was presented with.
    pub key: &'a VerifiedKey,
    pub prefix: &'a str,
    /// Canonical (`keysmith_verify::resource::canonical_resource`).
    pub resource: &'a str,
    /// `None`: the key's whole reach.
    pub scopes: Option<&'a ScopeSet>,
    pub grant_type: &'a str,
    /// The tenant's access-token lifetime.
    pub lifetime: time::Duration,
}

/// A freshly minted token: the plaintext exists only here.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: OAuthToken,
    pub expires_at: OffsetDateTime,
}

/// Why no token was issued.
#[derive(Debug)]
pub enum Refused {
    /// The key already holds [`MAX_LIVE_TOKENS_PER_KEY`] live tokens.
    TooManyLive,
}

/// Mints an access token for `request.key`, bound to its resource, living
/// the tenant's access-token lifetime (never past the key's own end), audited
/// `oauth.token` under the key. The live-token count and the insert run
/// with the key's row locked, so a burst cannot pass the cap together.
#[tracing::instrument(skip_all, fields(key_id = %request.key.key_id))]
pub async fn issue(
    pool: &AnyPool,
    peppers: &Peppers,
    request: TokenRequest<'_>,
    now: OffsetDateTime,
) -> AppResult<Result<IssuedToken, Refused>> {
    let key = request.key;
    let expires_at = (now + request.lifetime).min(key.valid_until);
    let mut tx = begin_write(pool).await?;
    sqlx::query(&format!(
        "SELECT id FROM api_keys WHERE id = $1 AND tenant_id = $2{}",
        row_lock(pool)
    ))
    .bind(&key.key_id)
    .bind(&key.tenant_id)
    .fetch_optional(&mut *tx)
    .await?;
    let live = live_access_tokens(&mut tx, &key.key_id, now).await?;
    if live >= MAX_LIVE_TOKENS_PER_KEY {
        return Ok(Err(Refused::TooManyLive));
    }
    let prefix = KeyPrefix::parse(request.prefix).unwrap_or_default();
    let token = insert(
        &mut tx,
        peppers,
        NewToken {
            tenant_id: &key.tenant_id,
            key_id: &key.key_id,
            grant_id: None,
            kind: TokenKind::Access,
            prefix: &prefix,
            client_id: &key.key_id,
            resource: request.resource,
            scopes: request.scopes,
            expires_at,
        },
        now,
    )
    .await?;
    let (tenant_id, key_id) = (TenantId::new(&key.tenant_id), KeyId::new(&key.key_id));
    let service_user_id = ServiceUserId::new(&key.service_user_id);
    let actor = Actor::ManagementKey {
        key_id: key.key_id.clone(),
    };
    let mut event = audit::NewAuditEvent::key_action(
        &tenant_id,
        (&key_id, &service_user_id),
        &actor,
        "oauth.token",
        Some(request.grant_type),
        now,
    );
    let subject = format!("token {} for {}", token.token_id(), request.resource);
    event.tool = Some(&subject);
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(Ok(IssuedToken { token, expires_at }))
}

/// A token about to be stored.
pub(crate) struct NewToken<'a> {
    pub tenant_id: &'a str,
    /// The parent key: the client's own (client credentials) or its grant's.
    pub key_id: &'a str,
    pub grant_id: Option<&'a str>,
    pub kind: TokenKind,
    pub prefix: &'a KeyPrefix,
    pub client_id: &'a str,
    pub resource: &'a str,
    pub scopes: Option<&'a ScopeSet>,
    pub expires_at: OffsetDateTime,
}

/// Mints and stores a token (only the peppered HMAC of its secret); the
/// plaintext is returned for the one answer that hands it out.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    peppers: &Peppers,
    new: NewToken<'_>,
    now: OffsetDateTime,
) -> AppResult<OAuthToken> {
    let token = OAuthToken::generate(new.prefix, new.kind);
    sqlx::query(
        "INSERT INTO oauth_tokens (id, tenant_id, key_id, grant_id, kind, prefix, secret_hash, pepper_version, \
         client_id, resource, scopes, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(token.token_id())
    .bind(new.tenant_id)
    .bind(new.key_id)
    .bind(new.grant_id)
    .bind(new.kind.as_str())
    .bind(new.prefix.as_str())
    .bind(hex::encode(peppers.digest_current(token.secret())))
    .bind(peppers.current_version())
    .bind(new.client_id)
    .bind(new.resource)
    .bind(new.scopes.map(ScopeSet::to_storage))
    .bind(UnixTime::from(now))
    .bind(UnixTime::from(new.expires_at))
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// Live access tokens of the key `key_id` (the caller holds its row lock).
pub(crate) async fn live_access_tokens(
    tx: &mut Transaction<'_, Any>,
    key_id: &str,
    now: OffsetDateTime,
) -> AppResult<i64> {
    let (live,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM oauth_tokens WHERE key_id = $1 AND kind = 'access' AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(key_id)
    .bind(UnixTime::from(now))
    .fetch_one(&mut **tx)
    .await?;
    Ok(live)
}

/// Revokes the access token `token_id` if it belongs to the client key
/// `client_key_id` of `tenant_id` (RFC 7009: anything else is silently
/// ignored). Layers on other instances drop the parent key's cached
/// verdicts at once on PostgreSQL (its tokens' with them).
#[tracing::instrument(skip_all, fields(token_id))]
pub async fn revoke(
    pool: &AnyPool,
    tenant_id: &str,
    client_key_id: &str,
    token_id: &str,
    now: OffsetDateTime,
) -> AppResult<bool> {
    let mut tx = begin_write(pool).await?;
    let done = sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $1 \
         WHERE id = $2 AND tenant_id = $3 AND key_id = $4 AND revoked_at IS NULL",
    )
    .bind(UnixTime::from(now))
    .bind(token_id)
    .bind(tenant_id)
    .bind(client_key_id)
    .execute(&mut *tx)
    .await?;
    let revoked = done.rows_affected() == 1;
    if revoked {
        let (tenant, key) = (TenantId::new(tenant_id), KeyId::new(client_key_id));
        let actor = Actor::ManagementKey {
            key_id: client_key_id.to_owned(),
        };
        let mut event = audit::NewAuditEvent::tenant_action(
            &tenant,
            &actor,
            "oauth.revoke",
            Some("revoked by its client"),
            now,
        );
        event.key_id = Some(&key);
        let subject = format!("token {token_id}");
        event.tool = Some(&subject);
        audit::record(&mut *tx, event).await?;
        announce_key_change(&mut tx, pool, client_key_id).await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

/// Deletes tokens that expired more than a day ago (their verdicts can no
/// longer be cached anywhere; the audit keeps what they did).
#[tracing::instrument(skip_all)]
pub async fn purge_expired(pool: &AnyPool, now: OffsetDateTime) -> AppResult<u64> {
    let cutoff = UnixTime::from(now - time::Duration::days(1));
    let done = sqlx::query("DELETE FROM oauth_tokens WHERE expires_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
