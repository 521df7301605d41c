//! Service users: the machine identities keys are issued to.

mod listing;
pub use listing::{KeyCounts, LiveKey, first_names, key_counts, list, live_keys, names_of};

use crate::domain::{ServiceUserId, TenantId, UnixTime};
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::domain::crypto::random;
use crate::{
    db::{OnUniqueViolation, announce_key_change, begin_write},
    domain::error::{DomainError, DomainResult},
    domain::{Actor, Description, Email, Name, audit, tenancy::caps},
};

/// A service user as stored (the API's shape of it lives with its routes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceUser {
    pub id: ServiceUserId,
    pub tenant_id: TenantId,
    pub name: String,
    pub owner_email: Option<String>,
    pub description: Option<String>,
    pub disabled_at: Option<UnixTime>,
    pub created_at: UnixTime,
}

/// The service user that owns a tenant's management keys.
pub const MANAGEMENT: &str = "keysmith-management";

const COLUMNS: &str = "id, tenant_id, name, owner_email, description, disabled_at, created_at";

#[derive(Debug)]
pub struct NewServiceUser {
    pub name: Name,
    pub owner_email: Option<Email>,
    pub description: Option<Description>,
}

/// Creates a service user, audited as `service_user.create`; refused (422)
/// when the tenant already has `cap` (`TenantCaps::service_users`).
#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn create(
    pool: &AnyPool,
    tenant_id: &TenantId,
    new: NewServiceUser,
    cap: i64,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<ServiceUser> {
    let id = ServiceUserId::new(random::base62(16));
    let mut tx = begin_write(pool).await?;
    caps::room_for_service_user(&mut tx, pool, tenant_id, cap).await?;
    sqlx::query(
        "INSERT INTO service_users (id, tenant_id, name, owner_email, description, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(new.name.as_str())
    .bind(new.owner_email.as_ref().map(Email::as_str))
    .bind(new.description.as_ref().map(Description::as_str))
    .bind(UnixTime::from(now))
    .execute(&mut *tx)
    .await
    .on_unique_violation(|| DomainError::Conflict(format!(
                "a service user named `{}` already exists",
                new.name
            )))?;
    let created = fetch(&mut *tx, tenant_id, &id).await?;
    let change = serde_json::json!({"after": snapshot(&created)}).to_string();
    record(
        &mut tx,
        &created,
        actor,
        "service_user.create",
        &change,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// What an admin may change about a service user; `None` leaves a field as
/// it is (`description: Some(None)` clears it).
#[derive(Debug, Default)]
pub struct ServiceUserChange {
    pub name: Option<Name>,
    pub owner_email: Option<Email>,
    pub description: Option<Option<Description>>,
}

impl ServiceUserChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.owner_email.is_none() && self.description.is_none()
    }
}

/// Edits a service user, audited as `service_user.update` with what it was
/// and what it became.
#[tracing::instrument(skip_all, fields(tenant_id, id))]
pub async fn update(
    pool: &AnyPool,
    tenant_id: &TenantId,
    id: &ServiceUserId,
    change: ServiceUserChange,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<ServiceUser> {
    if change.is_empty() {
        return Err(DomainError::validation(
            "give at least one of name, owner_email, description",
        ));
    }
    let mut tx = begin_write(pool).await?;
    let before = fetch(&mut *tx, tenant_id, id).await?;
    let name = change
        .name
        .as_ref()
        .map_or(before.name.as_str(), Name::as_str);
    let owner_email = change
        .owner_email
        .as_ref()
        .map(Email::as_str)
        .or(before.owner_email.as_deref());
    let description = match &change.description {
        Some(new) => new.as_ref().map(Description::as_str),
        None => before.description.as_deref(),
    };
    sqlx::query(
        "UPDATE service_users SET name = $1, owner_email = $2, description = $3 WHERE tenant_id = $4 AND id = $5",
    )
    .bind(name)
    .bind(owner_email)
    .bind(description)
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *tx)
    .await
    .on_unique_violation(|| {
        DomainError::Conflict(format!("a service user named `{name}` already exists"))
    })?;
    let after = fetch(&mut *tx, tenant_id, id).await?;
    let change =
        serde_json::json!({"before": snapshot(&before), "after": snapshot(&after)}).to_string();
    record(&mut tx, &after, actor, "service_user.update", &change, now).await?;
    tx.commit().await?;
    Ok(after)
}

/// Disables (every key refused at once, on every instance) or enables a
/// service user, audited with before and after. Setting what already is
/// changes nothing and records nothing.
#[tracing::instrument(skip_all, fields(tenant_id, id, disabled))]
pub async fn set_disabled(
    pool: &AnyPool,
    tenant_id: &TenantId,
    id: &ServiceUserId,
    disabled: bool,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<ServiceUser> {
    let mut tx = begin_write(pool).await?;
    let before = fetch(&mut *tx, tenant_id, id).await?;
    if before.disabled_at.is_some() == disabled {
        return Ok(before);
    }
    sqlx::query("UPDATE service_users SET disabled_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(disabled.then(|| UnixTime::from(now)))
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // Layers on other instances drop these keys from their caches at commit.
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM api_keys WHERE tenant_id = $1 AND service_user_id = $2 AND status IN ('active', 'rotating')",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    for key_id in &keys {
        announce_key_change(&mut tx, pool, key_id).await?;
    }
    let after = fetch(&mut *tx, tenant_id, id).await?;
    let action = if disabled {
        "service_user.disable"
    } else {
        "service_user.enable"
    };
    let change =
        serde_json::json!({"before": snapshot(&before), "after": snapshot(&after)}).to_string();
    record(&mut tx, &after, actor, action, &change, now).await?;
    if disabled {
        let data = serde_json::json!({"service_user_id": after.id, "name": after.name, "keys_affected": keys});
        crate::domain::events::webhooks::enqueue(
            &mut tx,
            tenant_id,
            "service_user.disabled",
            data,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(after)
}

/// The fields an audit line shows before and after a change.
fn snapshot(user: &ServiceUser) -> serde_json::Value {
    serde_json::json!({
        "name": user.name,
        "owner_email": user.owner_email,
        "description": user.description,
        "disabled": user.disabled_at.is_some(),
    })
}

async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user: &ServiceUser,
    actor: &Actor,
    action: &str,
    change: &str,
    now: OffsetDateTime,
) -> DomainResult<()> {
    audit::record(
        &mut **tx,
        audit::NewAuditEvent {
            tenant_id: &user.tenant_id,
            key_id: None,
            service_user_id: Some(&user.id),
            actor: actor.to_string(),
            action,
            tool: None,
            outcome: "ok",
            reason: Some(change),
            request_id: None,
            at: now,
        },
    )
    .await
}

async fn fetch<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tenant_id: &TenantId,
    id: &ServiceUserId,
) -> DomainResult<ServiceUser> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM service_users WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?
    .ok_or(DomainError::NotFound("service user"))
}

/// One service user of `tenant_id`; another tenant's is `NotFound`.
pub async fn get(
    pool: &AnyPool,
    tenant_id: &TenantId,
    id: &ServiceUserId,
) -> DomainResult<ServiceUser> {
    fetch(pool, tenant_id, id).await
}

pub async fn find_by_name(
    pool: &AnyPool,
    tenant_id: &TenantId,
    name: &str,
) -> DomainResult<Option<ServiceUser>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM service_users WHERE tenant_id = $1 AND name = $2"
    ))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(pool)
    .await?)
}
