//! RFC 7009 for clients of the authorization-code flow, and the grant's end
//! that a revoked or reused refresh token brings.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::{client_actor, lock_grant};
use crate::{
    db::begin_write,
    domain::error::DomainResult,
    domain::{KeyId, ServiceUserId, UnixTime, oauth::grants, tenancy::tenants::Tenant},
};
use keysmith_verify::{OAuthToken, Peppers, TokenKind};

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
        let why = ("revoked by its client", "oauth.revoke");
        end_for_client(&mut tx, pool, tenant, &grant_id, client_id, why, now).await?;
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

/// Ends the grant, if it still exists, at its client's request or because of
/// what the client did (`why`: the reason and the audit action); whether
/// this ended it.
pub(super) async fn end_for_client(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    tenant: &Tenant,
    grant_id: &str,
    client_id: &str,
    (reason, action): (&str, &str),
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let found: Option<(ServiceUserId, KeyId)> = sqlx::query_as(
        "SELECT service_user_id, key_id FROM oauth_grants WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&tenant.id)
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((service_user_id, key_id)) = found else {
        return Ok(false);
    };
    let actor = client_actor(client_id);
    grants::end(
        tx,
        pool,
        grants::Ending {
            tenant_id: &tenant.id,
            grant_id,
            key: (&key_id, &service_user_id),
            reason,
            action,
            actor: &actor,
        },
        now,
    )
    .await
}
