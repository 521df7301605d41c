//! Changing the limits of an existing key.

use sqlx::AnyPool;
use time::OffsetDateTime;

use super::{KeyRow, queries::fetch};
use crate::domain::KeyId;
use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{Actor, audit, tenancy::tenants::Tenant},
};
use keysmith_verify::limit::{Quota, RateLimit};

/// A partial change: `None` keeps a part, `Some(None)` lifts it.
#[derive(Debug, Default)]
pub struct LimitsChange {
    pub rate_limit: Option<Option<RateLimit>>,
    pub quota: Option<Option<Quota>>,
}

/// Changes the limits of an active or rotating key of `tenant`, audited as
/// `key.limits` with before and after. The write is conditional on the value
/// read (compare and swap), so two concurrent edits never record a `before`
/// the other one had already replaced: the loser gets a `409`. Verification
/// layers on other instances drop the key from their cache at commit.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, key_id = %key_id))]
pub async fn set_limits(
    pool: &AnyPool,
    tenant: &Tenant,
    key_id: &KeyId,
    change: LimitsChange,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<KeyRow> {
    let mut tx = crate::db::begin_write(pool).await?;
    let current = super::revocation::fetch_live(&mut tx, &tenant.id, key_id, now).await?;
    let before = current.limits();
    let limits = super::limits(
        change.rate_limit.unwrap_or(before.rate_limit.clone()),
        change.quota.unwrap_or(before.quota),
    )?;
    let updated = sqlx::query(
        "UPDATE api_keys SET limits = $1 WHERE tenant_id = $2 AND id = $3 \
         AND status IN ('active', 'rotating') AND COALESCE(limits, '') = $4",
    )
    .bind(limits.to_storage())
    .bind(&tenant.id)
    .bind(key_id)
    .bind(current.limits.clone().unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(DomainError::Conflict(
            "the key changed while updating its limits; reload and try again".into(),
        ));
    }
    let reason = serde_json::json!({"before": before, "after": limits}).to_string();
    let event = audit::NewAuditEvent::key_action(
        &tenant.id,
        (key_id, &current.service_user_id),
        actor,
        "key.limits",
        Some(&reason),
        now,
    );
    audit::record(&mut *tx, event).await?;
    let row = fetch(&mut *tx, &tenant.id, key_id).await?;
    crate::db::announce_key_change(&mut tx, pool, key_id.as_str()).await?;
    tx.commit().await?;
    tracing::info!("key limits changed");
    Ok(row)
}
