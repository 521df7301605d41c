//! Create (shown once) and rotate with an overlap; revocation is in
//! `revocation`.

use crate::domain::{KeyId, ServiceUserId, TenantId, UnixTime};
use sqlx::{Any, AnyPool, Transaction};
use time::{Duration, OffsetDateTime};

use super::{
    ExpiryRequest, IssuedKey, KeyRow, KeyState, NewKey, notices::announce_rotation, queries::fetch,
    resolve_expiry,
};
use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{Actor, Scope, audit, events::webhooks, tenancy::caps, tenancy::tenants::Tenant},
};
use keysmith_verify::{ApiKey, KeyPrefix, Peppers};

struct KeyInsert<'a> {
    tenant: &'a Tenant,
    service_user_id: &'a ServiceUserId,
    name: &'a str,
    /// `allowed_tools`, `allowed_resources`, `allowed_prompts` as stored.
    allowed: [Option<String>; 3],
    limits: Option<String>,
    scopes: String,
    expires_at: OffsetDateTime,
    rotated_from: Option<&'a KeyId>,
    actor: &'a Actor,
    now: OffsetDateTime,
}

async fn insert_key(
    tx: &mut Transaction<'_, Any>,
    peppers: &Peppers,
    input: KeyInsert<'_>,
) -> DomainResult<IssuedKey> {
    let prefix = KeyPrefix::parse(&input.tenant.key_prefix).unwrap_or_default();
    let key = ApiKey::generate(&prefix);
    let digest = hex::encode(peppers.digest_current(key.secret()));
    let key_id = KeyId::new(key.key_id());
    let [tools, resources, prompts] = input.allowed;
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, service_user_id, name, prefix, secret_hash, pepper_version, hint, status, \
         allowed_tools, allowed_resources, allowed_prompts, scopes, created_at, created_by, expires_at, rotated_from, limits) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&key_id)
    .bind(&input.tenant.id)
    .bind(input.service_user_id)
    .bind(input.name)
    .bind(prefix.as_str())
    .bind(digest)
    .bind(peppers.current_version())
    .bind(key.hint())
    .bind(tools)
    .bind(resources)
    .bind(prompts)
    .bind(input.scopes)
    .bind(UnixTime::from(input.now))
    .bind(input.actor.to_string())
    .bind(UnixTime::from(input.expires_at))
    .bind(input.rotated_from)
    .bind(input.limits)
    .execute(&mut **tx)
    .await?;
    audit::record(
        &mut **tx,
        audit::NewAuditEvent {
            tenant_id: &input.tenant.id,
            key_id: Some(&key_id),
            service_user_id: Some(input.service_user_id),
            actor: input.actor.to_string(),
            action: "key.create",
            tool: None,
            outcome: "ok",
            reason: input.rotated_from.map(|_| "rotation"),
            request_id: None,
            at: input.now,
        },
    )
    .await?;
    let row = fetch(&mut **tx, &input.tenant.id, &key_id).await?;
    // A rotation announces itself as `key.rotated`, which names the new key.
    if input.rotated_from.is_none() {
        webhooks::enqueue(
            tx,
            &input.tenant.id,
            "key.created",
            row.event_data(),
            input.now,
        )
        .await?;
    }
    Ok(IssuedKey { row, key })
}

/// Creates a key for a service user of `tenant`; refused (422) when the
/// tenant already has `cap` working keys (`TenantCaps::keys`).
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, service_user_id = %new.service_user_id))]
pub async fn create(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    new: NewKey,
    cap: i64,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<IssuedKey> {
    let expires_at = resolve_expiry(tenant, new.expiry, now)?;
    let mut tx = crate::db::begin_write(pool).await?;
    caps::room_for_key(&mut tx, pool, &tenant.id, cap, now).await?;
    let owner: Option<(String,)> =
        sqlx::query_as("SELECT id FROM service_users WHERE tenant_id = $1 AND id = $2")
            .bind(&tenant.id)
            .bind(&new.service_user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if owner.is_none() {
        return Err(DomainError::NotFound("service user"));
    }
    let scopes: Vec<&str> = new.scopes.iter().map(Scope::as_str).collect();
    let issued = insert_key(
        &mut tx,
        peppers,
        KeyInsert {
            tenant,
            service_user_id: &new.service_user_id,
            name: new.name.as_str(),
            allowed: new.allowed.to_storage(),
            limits: new.limits.or(tenant.default_limits()).to_storage(),
            scopes: serde_json::to_string(&scopes).map_err(anyhow::Error::from)?,
            expires_at,
            rotated_from: None,
            actor,
            now,
        },
    )
    .await?;
    tx.commit().await?;
    crate::metrics::key_event("created", &tenant.slug, actor.channel());
    tracing::info!(key_id = %issued.row.id, "key created");
    Ok(issued)
}

/// Mints the parent key of an OAuth grant inside the grant's transaction:
/// for `service_user_id`, with `allowed` (the approved scopes), ending at
/// `expires_at` (the grant's end). Counts against the tenant's key cap like
/// any key. The plaintext is dropped here: nobody ever holds this key,
/// only the tokens that hang on it.
#[expect(
    clippy::too_many_arguments,
    reason = "create's arguments inside a caller's transaction"
)]
pub(crate) async fn create_for_grant(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    (service_user_id, name): (&ServiceUserId, &str),
    allowed: keysmith_verify::Capabilities,
    expires_at: OffsetDateTime,
    cap: i64,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<KeyRow> {
    caps::room_for_key(tx, pool, &tenant.id, cap, now).await?;
    let issued = insert_key(
        tx,
        peppers,
        KeyInsert {
            tenant,
            service_user_id,
            name,
            allowed: allowed.to_storage(),
            limits: tenant.default_limits().to_storage(),
            scopes: "[]".to_owned(),
            expires_at,
            rotated_from: None,
            actor,
            now,
        },
    )
    .await?;
    Ok(issued.row)
}

/// The outcome of a rotation: the new key (shown once) and the superseded one.
#[derive(Debug)]
pub struct Rotation {
    pub new: IssuedKey,
    pub old: KeyRow,
}

/// Rotates an active key: a new key for the same service user, name,
/// allowlists, limits and scopes; the old key keeps working until `min(old expiry, now + overlap)`.
/// `expiry` chooses the new key's lifetime; by default it gets the old key's
/// lifetime again, within the tenant maximum. The new key counts towards
/// `cap` as a created one does: else rotating each new key at once would
/// pile up working keys past the cap for the overlap.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, key_id = %key_id))]
#[expect(
    clippy::too_many_arguments,
    reason = "create's arguments and the key to replace; a struct would only rename them"
)]
pub async fn rotate(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    key_id: &KeyId,
    expiry: Option<ExpiryRequest>,
    cap: i64,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<Rotation> {
    let mut tx = crate::db::begin_write(pool).await?;
    let old = fetch(&mut *tx, &tenant.id, key_id).await?;
    if backs_a_grant(&mut tx, &tenant.id, key_id).await? {
        // Its successor would be a key nobody asked for, and the grant's
        // tokens would stop at the cutoff anyway.
        return Err(DomainError::Conflict(
            "this key backs an OAuth connection and is never rotated; revoke the connection (or the key) instead"
                .into(),
        ));
    }
    let status = old.status_at(now);
    if status != KeyState::Active {
        return Err(DomainError::Conflict(format!(
            "only an active key can be rotated; this key is {}",
            status.as_str()
        )));
    }
    caps::room_for_key(&mut tx, pool, &tenant.id, cap, now).await?;
    let lifetime_days = (old.expires_at - old.created_at)
        .whole_days()
        .clamp(1, tenant.max_expiry_days);
    let expires_at = resolve_expiry(
        tenant,
        expiry.unwrap_or(ExpiryRequest::InDays(lifetime_days)),
        now,
    )?;
    let new = insert_key(
        &mut tx,
        peppers,
        KeyInsert {
            tenant,
            service_user_id: &old.service_user_id,
            name: &old.name,
            allowed: old.allowed().to_storage(),
            limits: old.limits.clone(),
            scopes: old.scopes.clone(),
            expires_at,
            rotated_from: Some(&old.id),
            actor,
            now,
        },
    )
    .await?;
    let overlap_end = UnixTime::from(now + Duration::days(tenant.rotation_overlap_days));
    let cutoff = old.expires_at.min(overlap_end);
    let updated = sqlx::query(
        "UPDATE api_keys SET status = 'rotating', cutoff_at = $1, rotated_to = $2 \
         WHERE tenant_id = $3 AND id = $4 AND status = 'active'",
    )
    .bind(cutoff)
    .bind(&new.row.id)
    .bind(&tenant.id)
    .bind(&old.id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Someone else rotated or revoked it between our read and write.
        return Err(DomainError::Conflict(
            "the key changed while rotating; reload and try again".into(),
        ));
    }
    audit::record(
        &mut *tx,
        audit::NewAuditEvent {
            tenant_id: &tenant.id,
            key_id: Some(&old.id),
            service_user_id: Some(&old.service_user_id),
            actor: actor.to_string(),
            action: "key.rotate",
            tool: None,
            outcome: "ok",
            reason: Some(&format!("superseded by {}", new.row.id)),
            request_id: None,
            at: now,
        },
    )
    .await?;
    let old = fetch(&mut *tx, &tenant.id, &old.id).await?;
    announce_rotation(&mut tx, tenant, &old, &new.row, actor, now).await?;
    crate::db::announce_key_change(&mut tx, pool, old.id.as_str()).await?;
    tx.commit().await?;
    crate::metrics::key_event("rotated", &tenant.slug, actor.channel());
    tracing::info!(old_key_id = %old.id, new_key_id = %new.row.id, "key rotated");
    Ok(Rotation { new, old })
}

/// Whether `key_id` is the parent key of an OAuth grant.
async fn backs_a_grant(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    key_id: &KeyId,
) -> DomainResult<bool> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT id FROM oauth_grants WHERE tenant_id = $1 AND key_id = $2")
            .bind(tenant_id)
            .bind(key_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}
