//! Stored clients (dynamically registered or pre-registered by an admin):
//! their metadata checked once, at the edge, and the rows in `oauth_clients`.

use sqlx::AnyPool;
use time::OffsetDateTime;

use super::{AuthMethod, ClientKind, ClientSecret, OAuthClient, redirect};
use crate::{
    db::{begin_write, lock_tenant},
    domain::error::DomainResult,
    domain::{
        Actor, KeyId, ServiceUserId, TenantId, UnixTime, audit, crypto::random, oauth::grants,
    },
};
use keysmith_verify::Peppers;

// The metadata's types were first defined here; callers name them here too.
pub use super::metadata::{
    ClientMetadata, MAX_CLIENT_URI_LEN, MAX_NAME_CHARS, MAX_REDIRECT_URIS, MetadataError,
    RawMetadata,
};

/// `kc_` and 22 base62 characters (about 131 bits): never a key id (16
/// characters, no prefix) nor a URL, so a client_id says which kind it is.
const ID_PREFIX: &str = "kc_";
const ID_CHARS: usize = 22;

pub fn looks_like_client_id(raw: &str) -> bool {
    raw.strip_prefix(ID_PREFIX).is_some_and(|rest| {
        rest.len() == ID_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A stored client as listed (never its secret).
#[derive(Debug, Clone)]
pub struct StoredClient {
    pub client_id: String,
    pub kind: ClientKind,
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub created_at: UnixTime,
    /// The admin who pre-registered it (`null`: registered by the client).
    pub created_by: Option<String>,
}

/// A client just stored, and its secret if confidential (shown this once).
#[derive(Debug)]
pub struct CreatedClient {
    pub client: StoredClient,
    pub secret: Option<ClientSecret>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    kind: String,
    name: String,
    client_uri: Option<String>,
    redirect_uris: String,
    grant_types: String,
    auth_method: String,
    secret_hash: Option<String>,
    pepper_version: Option<i64>,
    created_at: UnixTime,
    created_by: Option<String>,
}

const COLUMNS: &str = "id, kind, name, client_uri, redirect_uris, grant_types, auth_method, \
                       secret_hash, pepper_version, created_at, created_by";

impl Row {
    fn kind(&self) -> ClientKind {
        if self.kind == "pre_registered" {
            ClientKind::PreRegistered
        } else {
            ClientKind::Registered
        }
    }

    fn listed(self) -> StoredClient {
        StoredClient {
            kind: self.kind(),
            client_id: self.id,
            client_name: self.name,
            client_uri: self.client_uri,
            redirect_uris: serde_json::from_str(&self.redirect_uris).unwrap_or_default(),
            grant_types: serde_json::from_str(&self.grant_types).unwrap_or_default(),
            token_endpoint_auth_method: AuthMethod::parse(&self.auth_method)
                .unwrap_or(AuthMethod::None),
            created_at: self.created_at,
            created_by: self.created_by,
        }
    }

    fn client(self) -> OAuthClient {
        let secret_hash = self.secret_hash.clone().zip(self.pepper_version);
        let listed = self.listed();
        let origin = listed
            .redirect_uris
            .first()
            .and_then(|uri| redirect::origin_of(uri))
            .unwrap_or_default();
        OAuthClient {
            client_id: listed.client_id,
            kind: listed.kind,
            name: listed.client_name,
            origin,
            client_uri: listed.client_uri,
            redirect_uris: listed.redirect_uris,
            grant_types: listed.grant_types,
            auth_method: listed.token_endpoint_auth_method,
            secret_hash,
        }
    }
}

/// The stored client `client_id` of `tenant_id`, if any.
#[tracing::instrument(skip_all)]
pub async fn find(
    pool: &AnyPool,
    tenant_id: &TenantId,
    client_id: &str,
) -> DomainResult<Option<OAuthClient>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM oauth_clients WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(client_id)
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Row::client))
}

/// Every stored client of `tenant_id`, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &AnyPool, tenant_id: &TenantId) -> DomainResult<Vec<StoredClient>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM oauth_clients WHERE tenant_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Row::listed).collect())
}

/// Why a client was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStored {
    /// The tenant already holds its maximum of stored clients.
    TenantFull(i64),
    /// The tenant accepts no dynamic registration.
    RegistrationClosed,
}

/// Stores a client of `tenant_id` (the tenant's count checked and the row
/// written with the tenant locked, so a burst cannot pass the cap), with a
/// fresh id and, for a confidential client, a fresh secret kept only as an
/// HMAC. `actor` `None`: dynamic registration (checked against the
/// tenant's switch in the same transaction).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn create(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant_id: &TenantId,
    metadata: ClientMetadata,
    actor: Option<&Actor>,
    max_per_tenant: i64,
    now: OffsetDateTime,
) -> DomainResult<Result<CreatedClient, NotStored>> {
    let id = format!("{ID_PREFIX}{}", random::base62(ID_CHARS));
    let secret = (metadata.auth_method != AuthMethod::None).then(ClientSecret::generate);
    let kind = match actor {
        Some(_) => ClientKind::PreRegistered,
        None => ClientKind::Registered,
    };
    let name = metadata.name.clone().unwrap_or_else(|| {
        metadata
            .redirect_uris
            .first()
            .and_then(|uri| redirect::origin_of(uri))
            .unwrap_or_else(|| "unnamed client".to_owned())
    });
    let mut tx = begin_write(pool).await?;
    lock_tenant(&mut tx, pool, tenant_id.as_str()).await?;
    if actor.is_none() && !registration_open_in(&mut tx, tenant_id).await? {
        return Ok(Err(NotStored::RegistrationClosed));
    }
    let (existing,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM oauth_clients WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await?;
    if existing >= max_per_tenant {
        return Ok(Err(NotStored::TenantFull(max_per_tenant)));
    }
    let hash = secret
        .as_ref()
        .map(|s| hex::encode(peppers.digest_current(s.expose().as_bytes())));
    let created_by = actor.map(ToString::to_string);
    let to_json = |list: &[String]| serde_json::to_string(list).map_err(anyhow::Error::from);
    sqlx::query(
        "INSERT INTO oauth_clients (id, tenant_id, kind, name, client_uri, redirect_uris, grant_types, \
         auth_method, secret_hash, pepper_version, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(kind.as_str())
    .bind(&name)
    .bind(&metadata.client_uri)
    .bind(to_json(&metadata.redirect_uris)?)
    .bind(to_json(&metadata.grant_types)?)
    .bind(metadata.auth_method.as_str())
    .bind(&hash)
    .bind(hash.as_ref().map(|_| peppers.current_version()))
    .bind(UnixTime::from(now))
    .bind(&created_by)
    .execute(&mut *tx)
    .await?;
    let subject = format!("client {id} ({name})");
    let mut event = audit::NewAuditEvent::tenant_action(
        tenant_id,
        actor.unwrap_or(&Actor::System),
        "oauth.client_created",
        Some(kind.as_str()),
        now,
    );
    if actor.is_none() {
        // Nobody signed in: the client registered itself.
        event.actor = format!("oauth-client:{id}");
    }
    event.tool = Some(&subject);
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    let client = StoredClient {
        client_id: id,
        kind,
        client_name: name,
        client_uri: metadata.client_uri,
        redirect_uris: metadata.redirect_uris,
        grant_types: metadata.grant_types,
        token_endpoint_auth_method: metadata.auth_method,
        created_at: UnixTime::from(now),
        created_by,
    };
    Ok(Ok(CreatedClient { client, secret }))
}

/// Deletes a stored client of `tenant_id`: it can no longer start an
/// authorization nor redeem a code or refresh token, and its grants end
/// (their tokens with them). `false`: no such client in this tenant
/// (another tenant's included).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn delete(
    pool: &AnyPool,
    tenant_id: &TenantId,
    client_id: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let mut tx = begin_write(pool).await?;
    let done = sqlx::query("DELETE FROM oauth_clients WHERE id = $1 AND tenant_id = $2")
        .bind(client_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Its connections end with it: their tokens stop at once, not at expiry.
    let live: Vec<(String, ServiceUserId, KeyId)> = sqlx::query_as(
        "SELECT id, service_user_id, key_id FROM oauth_grants \
         WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant_id)
    .bind(client_id)
    .fetch_all(&mut *tx)
    .await?;
    let by = actor.to_string();
    for (grant_id, service_user_id, key_id) in &live {
        let ending = grants::Ending {
            tenant_id,
            grant_id,
            key: (key_id, service_user_id),
            reason: "client deleted",
            action: "oauth.grant.revoke",
            actor: &by,
        };
        grants::end(&mut tx, pool, ending, now).await?;
    }
    let subject = format!("client {client_id}");
    let mut event =
        audit::NewAuditEvent::tenant_action(tenant_id, actor, "oauth.client_deleted", None, now);
    event.tool = Some(&subject);
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(true)
}

/// The tenant's registration switch (its policy), read under the tenant's
/// lock: a registration racing a policy change that closes it is refused.
async fn registration_open_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
) -> DomainResult<bool> {
    let (open,): (i64,) =
        sqlx::query_as("SELECT oauth_registration_open FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(open != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_recognised_by_shape() {
        assert!(looks_like_client_id(&format!("kc_{}", "a".repeat(22))));
        assert!(!looks_like_client_id(&format!("kc_{}", "a".repeat(21))));
        assert!(!looks_like_client_id("https://e.com/client.json"));
        assert!(!looks_like_client_id("0123456789abcdef"));
        assert!(!looks_like_client_id(&format!("kc_{}-", "a".repeat(21))));
    }
}
