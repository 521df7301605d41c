//! Reading keys: one, its state, a tenant's page of them.

use crate::domain::UnixTime;
use crate::domain::{KeyId, ServiceUserId, TenantId};
use sqlx::{Any, AnyPool};
use time::OffsetDateTime;

use super::{COLUMNS, KeyRow, KeyState};
use crate::{
    domain::error::{DomainError, DomainResult},
    domain::values::page::{self, Page},
};

pub(super) async fn fetch<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    tenant_id: &TenantId,
    key_id: &KeyId,
) -> DomainResult<KeyRow> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(executor)
    .await?
    .ok_or(DomainError::NotFound("key"))
}

/// One key of `tenant_id`; another tenant's is `NotFound`.
pub async fn get(pool: &AnyPool, tenant_id: &TenantId, key_id: &KeyId) -> DomainResult<KeyRow> {
    fetch(pool, tenant_id, key_id).await
}

/// The state of one key of a tenant at `now`, or `None` if there is no such key.
pub async fn state_of(
    pool: &AnyPool,
    tenant_id: &TenantId,
    key_id: &KeyId,
    now: OffsetDateTime,
) -> DomainResult<Option<KeyState>> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT status, expires_at, cutoff_at FROM api_keys WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(status, expires_at, cutoff_at)| {
        KeyState::at(&status, expires_at, cutoff_at, UnixTime::from(now).secs())
    }))
}

/// Active management keys of `tenant_id` (those of the service user
/// `keysmith-management`) that expire after `now` but by `until`, soonest first.
pub async fn management_expiring(
    pool: &AnyPool,
    tenant_id: &TenantId,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> DomainResult<Vec<KeyRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys \
         WHERE tenant_id = $1 AND status = 'active' AND expires_at > $2 AND expires_at <= $3 \
           AND service_user_id IN (SELECT id FROM service_users WHERE tenant_id = $1 AND name = $4) \
         ORDER BY expires_at, id"
    ))
    .bind(tenant_id)
    .bind(UnixTime::from(now))
    .bind(UnixTime::from(until))
    .bind(crate::domain::tenancy::service_users::MANAGEMENT)
    .fetch_all(pool)
    .await?)
}

#[derive(Debug, Default, Clone)]
pub struct KeyFilter {
    pub status: Option<KeyState>,
    pub service_user_id: Option<ServiceUserId>,
}

/// Keys of a tenant, newest first, by keyset pagination on `(created_at, id)`
/// so page 1000 costs the same as page 1.
#[tracing::instrument(skip(pool))]
pub async fn list(
    pool: &AnyPool,
    tenant_id: &TenantId,
    filter: &KeyFilter,
    cursor: Option<&str>,
    limit: i64,
    now: OffsetDateTime,
) -> DomainResult<Page<KeyRow>> {
    let now_unix = UnixTime::from(now);
    let mut sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1");
    let mut next = 2;
    let mut placeholder = || {
        let p = format!("${next}");
        next += 1;
        p
    };
    let status_sql = filter
        .status
        .map(|state| format!(" AND {}", state.sql_condition(&placeholder())));
    sql.push_str(status_sql.as_deref().unwrap_or_default());
    if filter.service_user_id.is_some() {
        sql.push_str(&format!(" AND service_user_id = {}", placeholder()));
    }
    let cursor = cursor.map(page::time_and_id).transpose()?;
    if cursor.is_some() {
        // A row-value comparison, not `a < x OR (a = x AND b < y)`: both
        // engines seek the index to it, so page 1,000 costs what page 1 does.
        let (a, b) = (placeholder(), placeholder());
        sql.push_str(&format!(" AND (created_at, id) < ({a}, {b})"));
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        placeholder()
    ));

    let mut query = sqlx::query_as::<_, KeyRow>(&sql).bind(tenant_id);
    if filter.status.is_some() {
        query = query.bind(now_unix);
    }
    if let Some(su) = &filter.service_user_id {
        query = query.bind(su.as_str());
    }
    if let Some((created_at, id)) = cursor {
        query = query.bind(created_at).bind(id);
    }
    let rows = query.bind(limit + 1).fetch_all(pool).await?;
    Ok(Page::from_overfetch(rows, limit, |k| {
        format!("{}.{}", k.created_at.secs(), k.id)
    }))
}
