//! Per-tenant caps on what a tenant holds (service users, working keys), so
//! one tenant's growth bounds what its pages, exports and sweeps cost the
//! others. Checked under the tenant's lock: two creations at once cannot
//! both take the last place.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use crate::{
    config::Config,
    domain::error::{DomainError, DomainResult},
    domain::{TenantId, UnixTime},
};

/// The operator's caps (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct TenantCaps {
    /// `KEYSMITH_MAX_SERVICE_USERS_PER_TENANT`.
    pub service_users: i64,
    /// `KEYSMITH_MAX_KEYS_PER_TENANT`: active and rotating keys not yet expired.
    pub keys: i64,
}

impl TenantCaps {
    pub fn of(config: &Config) -> Self {
        Self {
            service_users: config.max_service_users_per_tenant,
            keys: config.max_keys_per_tenant,
        }
    }
}

/// Refuses (422) a new service user when `tenant_id` has `cap` already.
pub async fn room_for_service_user(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    tenant_id: &TenantId,
    cap: i64,
) -> DomainResult<()> {
    crate::db::lock_tenant(tx, pool, tenant_id.as_str()).await?;
    let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM service_users WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    if held >= cap {
        return Err(DomainError::Validation(format!(
            "a tenant has at most {cap} service users (KEYSMITH_MAX_SERVICE_USERS_PER_TENANT): reuse or remove one first"
        )));
    }
    Ok(())
}

/// Refuses (422) a new key (created or rotated in) when `tenant_id` has
/// `cap` working keys already. Expired and revoked keys do not count.
pub async fn room_for_key(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    tenant_id: &TenantId,
    cap: i64,
    now: OffsetDateTime,
) -> DomainResult<()> {
    crate::db::lock_tenant(tx, pool, tenant_id.as_str()).await?;
    let (held,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM api_keys \
         WHERE tenant_id = $1 AND status IN ('active', 'rotating') AND expires_at > $2",
    )
    .bind(tenant_id)
    .bind(UnixTime::from(now))
    .fetch_one(&mut **tx)
    .await?;
    if held >= cap {
        return Err(DomainError::Validation(format!(
            "a tenant has at most {cap} working keys (KEYSMITH_MAX_KEYS_PER_TENANT): revoke some first"
        )));
    }
    Ok(())
}
