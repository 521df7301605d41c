//! Reading a tenant's service users a page at a time, with what the pages
//! show beside each (key counts, working keys): every query is bounded by a
//! page, never by how many service users a tenant has.

use sqlx::AnyPool;
use time::OffsetDateTime;

use super::{COLUMNS, ServiceUser};
use crate::{
    domain::error::DomainResult,
    domain::{
        KeyId, ServiceUserId, TenantId, UnixTime,
        values::page::{self, Page},
    },
};

/// Service users of a tenant, newest first, by keyset pagination on
/// `(created_at, id)` as keys are, so page 1,000 costs what page 1 does.
#[tracing::instrument(skip(pool))]
pub async fn list(
    pool: &AnyPool,
    tenant_id: &TenantId,
    cursor: Option<&str>,
    limit: i64,
) -> DomainResult<Page<ServiceUser>> {
    let cursor = cursor.map(page::time_and_id).transpose()?;
    let after = if cursor.is_some() {
        " AND (created_at, id) < ($2, $3)"
    } else {
        ""
    };
    let limit_at = if cursor.is_some() { "$4" } else { "$2" };
    let sql = format!(
        "SELECT {COLUMNS} FROM service_users WHERE tenant_id = $1{after} \
         ORDER BY created_at DESC, id DESC LIMIT {limit_at}"
    );
    let mut query = sqlx::query_as::<_, ServiceUser>(&sql).bind(tenant_id);
    if let Some((created_at, id)) = cursor {
        query = query.bind(created_at).bind(id);
    }
    let rows = query.bind(limit + 1).fetch_all(pool).await?;
    Ok(Page::from_overfetch(rows, limit, |u| {
        format!("{}.{}", u.created_at.secs(), u.id)
    }))
}

/// The first `limit` service users of a tenant by name, `(id, name)`: what a
/// form offers to pick from without reading them all (the unique
/// `(tenant_id, name)` index serves it).
pub async fn first_names(
    pool: &AnyPool,
    tenant_id: &TenantId,
    limit: i64,
) -> DomainResult<Vec<(ServiceUserId, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, name FROM service_users WHERE tenant_id = $1 ORDER BY name LIMIT $2",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The names of these service users of a tenant, `(id, name)`; ids of
/// another tenant are simply absent.
pub async fn names_of(
    pool: &AnyPool,
    tenant_id: &TenantId,
    ids: &[ServiceUserId],
) -> DomainResult<Vec<(ServiceUserId, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, name FROM service_users WHERE tenant_id = $1 AND id IN ({})",
        placeholders(2, ids.len())
    );
    let mut query = sqlx::query_as(&sql).bind(tenant_id);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(pool).await?)
}

/// How many keys a service user has, by what they can do right now.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct KeyCounts {
    pub service_user_id: ServiceUserId,
    /// Active and not expired.
    pub usable: i64,
    /// Rotated, still inside their overlap window.
    pub rotating: i64,
    pub total: i64,
}

/// Key counts for these service users of `tenant_id` (those with keys), in one query.
pub async fn key_counts(
    pool: &AnyPool,
    tenant_id: &TenantId,
    ids: &[ServiceUserId],
    now: OffsetDateTime,
) -> DomainResult<Vec<KeyCounts>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT service_user_id, \
                COUNT(*) FILTER (WHERE status = 'active' AND expires_at > $2) AS usable, \
                COUNT(*) FILTER (WHERE status = 'rotating' AND expires_at > $2 AND cutoff_at > $2) AS rotating, \
                COUNT(*) AS total \
         FROM api_keys WHERE tenant_id = $1 AND service_user_id IN ({}) GROUP BY service_user_id",
        placeholders(3, ids.len())
    );
    let mut query = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(UnixTime::from(now));
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(pool).await?)
}

/// A key that still works, as listed under its service user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveKey {
    pub id: KeyId,
    pub service_user_id: ServiceUserId,
    pub name: String,
    pub status: String,
    pub hint: String,
}

/// The newest `per_user` working keys of each of these service users of `tenant_id`.
pub async fn live_keys(
    pool: &AnyPool,
    tenant_id: &TenantId,
    ids: &[ServiceUserId],
    per_user: i64,
    now: OffsetDateTime,
) -> DomainResult<Vec<LiveKey>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, service_user_id, name, status, hint FROM ( \
             SELECT id, service_user_id, name, status, hint, \
                    ROW_NUMBER() OVER (PARTITION BY service_user_id ORDER BY created_at DESC, id DESC) AS recency \
             FROM api_keys \
             WHERE tenant_id = $1 AND expires_at > $2 AND service_user_id IN ({}) \
               AND (status = 'active' OR (status = 'rotating' AND cutoff_at > $2)) \
         ) ranked WHERE recency <= $3 ORDER BY service_user_id, recency",
        placeholders(4, ids.len())
    );
    let mut query = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(UnixTime::from(now))
        .bind(per_user);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(pool).await?)
}

/// `$first, $first+1, …`: `count` numbered placeholders for an `IN` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(2, 1), "$2");
    }
}
