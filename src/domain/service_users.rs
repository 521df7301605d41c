//! Service users: the machine identities keys are issued to.

use serde::Serialize;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::{
    db::OnUniqueViolation,
    domain::{Description, Email, Name},
    error::{AppError, AppResult},
};
use keysmith_verify::{random_id, timestamp};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ServiceUser {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: String,
    pub name: String,
    pub owner_email: Option<String>,
    pub description: Option<String>,
    #[serde(serialize_with = "crate::domain::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<i64>,
    #[serde(with = "crate::domain::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, owner_email, description, disabled_at, created_at";

#[derive(Debug)]
pub struct NewServiceUser {
    pub name: Name,
    pub owner_email: Option<Email>,
    pub description: Option<Description>,
}

#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn create(
    pool: &AnyPool,
    tenant_id: &str,
    new: NewServiceUser,
    now: OffsetDateTime,
) -> AppResult<ServiceUser> {
    let id = random_id(16);
    sqlx::query(
        "INSERT INTO service_users (id, tenant_id, name, owner_email, description, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(new.name.as_str())
    .bind(new.owner_email.as_ref().map(Email::as_str))
    .bind(new.description.as_ref().map(Description::as_str))
    .bind(timestamp::to_unix(now))
    .execute(pool)
    .await
    .on_unique_violation(|| AppError::Conflict(format!(
                "a service user named `{}` already exists",
                new.name
            )))?;
    get(pool, tenant_id, &id).await
}

/// One service user of `tenant_id`; another tenant's is `NotFound`.
pub async fn get(pool: &AnyPool, tenant_id: &str, id: &str) -> AppResult<ServiceUser> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM service_users WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(AppError::NotFound("service user"))
}

pub async fn find_by_name(
    pool: &AnyPool,
    tenant_id: &str,
    name: &str,
) -> AppResult<Option<ServiceUser>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM service_users WHERE tenant_id = $1 AND name = $2"
    ))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(pool)
    .await?)
}

pub async fn list(pool: &AnyPool, tenant_id: &str) -> AppResult<Vec<ServiceUser>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM service_users WHERE tenant_id = $1 ORDER BY name"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await?)
}

/// How many keys a service user has, by what they can do right now.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct KeyCounts {
    pub service_user_id: String,
    /// Active and not expired.
    pub usable: i64,
    /// Rotated, still inside their overlap window.
    pub rotating: i64,
    pub total: i64,
}

/// Key counts for every service user of `tenant_id` that has keys, in one query.
pub async fn key_counts(
    pool: &AnyPool,
    tenant_id: &str,
    now: OffsetDateTime,
) -> AppResult<Vec<KeyCounts>> {
    Ok(sqlx::query_as(
        "SELECT service_user_id, \
                COUNT(*) FILTER (WHERE status = 'active' AND expires_at > $2) AS usable, \
                COUNT(*) FILTER (WHERE status = 'rotating' AND expires_at > $2 AND cutoff_at > $2) AS rotating, \
                COUNT(*) AS total \
         FROM api_keys WHERE tenant_id = $1 GROUP BY service_user_id",
    )
    .bind(tenant_id)
    .bind(timestamp::to_unix(now))
    .fetch_all(pool)
    .await?)
}

/// A key that still works, as listed under its service user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveKey {
    pub id: String,
    pub service_user_id: String,
    pub name: String,
    pub status: String,
    pub hint: String,
}

/// The newest `per_user` working keys of each service user of `tenant_id`.
pub async fn live_keys(
    pool: &AnyPool,
    tenant_id: &str,
    per_user: i64,
    now: OffsetDateTime,
) -> AppResult<Vec<LiveKey>> {
    Ok(sqlx::query_as(
        "SELECT id, service_user_id, name, status, hint FROM ( \
             SELECT id, service_user_id, name, status, hint, \
                    ROW_NUMBER() OVER (PARTITION BY service_user_id ORDER BY created_at DESC, id DESC) AS recency \
             FROM api_keys \
             WHERE tenant_id = $1 AND expires_at > $2 \
               AND (status = 'active' OR (status = 'rotating' AND cutoff_at > $2)) \
         ) ranked WHERE recency <= $3 ORDER BY service_user_id, recency",
    )
    .bind(tenant_id)
    .bind(timestamp::to_unix(now))
    .bind(per_user)
    .fetch_all(pool)
    .await?)
}
