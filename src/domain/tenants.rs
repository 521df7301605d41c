//! Tenants: the unit of isolation. Everything else belongs to exactly one.

use serde::Serialize;
use sqlx::AnyPool;
use time::OffsetDateTime;

use crate::{
    db::OnUniqueViolation,
    domain::{Name, TenantSlug},
    error::{AppError, AppResult},
};
use keysmith_verify::{KeyPrefix, random_id, timestamp};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub key_prefix: String,
    pub default_expiry_days: i64,
    pub max_expiry_days: i64,
    pub rotation_overlap_days: i64,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, slug, name, key_prefix, default_expiry_days, max_expiry_days, rotation_overlap_days, disabled_at, created_at";

#[derive(Debug)]
pub struct NewTenant {
    pub slug: TenantSlug,
    pub name: Name,
    pub key_prefix: KeyPrefix,
}

#[tracing::instrument(skip_all, fields(slug = %new.slug))]
pub async fn create(pool: &AnyPool, new: NewTenant, now: OffsetDateTime) -> AppResult<Tenant> {
    let id = random_id(16);
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(new.slug.as_str())
    .bind(new.name.as_str())
    .bind(new.key_prefix.as_str())
    .bind(timestamp::to_unix(now))
    .execute(pool)
    .await
    .on_unique_violation(|| {
        AppError::Conflict(format!("a tenant with slug `{}` already exists", new.slug))
    })?;
    find_by_id(pool, &id)
        .await?
        .ok_or(AppError::NotFound("tenant"))
}

pub async fn find_by_slug(pool: &AnyPool, slug: &str) -> AppResult<Option<Tenant>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn find_by_id(pool: &AnyPool, id: &str) -> AppResult<Option<Tenant>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn list(pool: &AnyPool) -> AppResult<Vec<Tenant>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants ORDER BY slug"))
            .fetch_all(pool)
            .await?,
    )
}
