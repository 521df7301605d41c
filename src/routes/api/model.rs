//! The JSON shape of a key. Never the hash, never the secret: the plaintext
//! appears only in [`CreatedKey`], the create and rotate responses. The
//! command line prints the same shapes (`keysmith key … --json`).

use crate::domain::{KeyId, UnixTime};
use keysmith_verify::limit::{Quota, RateLimit};
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::keys::{IssuedKey, KeyRow, KeyState, Rotation};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: String,
    /// Tenant slug.
    pub tenant: String,
    pub service_user_id: String,
    pub name: String,
    pub prefix: String,
    /// The last four characters of the key, to tell keys apart.
    pub hint: String,
    /// One of `active, rotating, expired, revoked`, as of now.
    #[schema(value_type = String)]
    pub status: KeyState,
    /// `null`: every tool (the key names no allowlist); `[]`: none (the key
    /// names another kind's list only).
    pub allowed_tools: Option<Vec<String>>,
    /// `null`: every resource; `[]`: none. URIs or `prefix*`.
    pub allowed_resources: Option<Vec<String>>,
    /// `null`: every prompt; `[]`: none.
    pub allowed_prompts: Option<Vec<String>>,
    pub scopes: Vec<String>,
    /// `null`: no rate limit.
    #[schema(value_type = Option<Object>)]
    pub rate_limit: Option<RateLimit>,
    /// `null`: no quota.
    #[schema(value_type = Option<Object>)]
    pub quota: Option<Quota>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// For a rotating key: when it stops working.
    #[schema(format = DateTime)]
    pub cutoff_at: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl KeyInfo {
    pub fn new(row: &KeyRow, tenant_slug: &str, now: OffsetDateTime) -> Self {
        let limits = row.limits();
        let allowed = row.allowed();
        Self {
            id: row.id.to_string(),
            tenant: tenant_slug.to_owned(),
            service_user_id: row.service_user_id.to_string(),
            name: row.name.clone(),
            prefix: row.prefix.clone(),
            hint: row.hint.clone(),
            status: row.status_at(now),
            allowed_tools: allowed.tools().to_strings(),
            allowed_resources: allowed.resources().to_strings(),
            allowed_prompts: allowed.prompts().to_strings(),
            scopes: row.scopes(),
            rate_limit: limits.rate_limit,
            quota: limits.quota,
            created_at: row.created_at.rfc3339(),
            created_by: row.created_by.clone(),
            expires_at: row.expires_at.rfc3339(),
            cutoff_at: row.cutoff_at.map(UnixTime::rfc3339),
            revoked_at: row.revoked_at.map(UnixTime::rfc3339),
            revoked_reason: row.revoked_reason.clone(),
            rotated_from: row.rotated_from.as_ref().map(KeyId::to_string),
            rotated_to: row.rotated_to.as_ref().map(KeyId::to_string),
            last_used_at: row.last_used_at.map(UnixTime::rfc3339),
        }
    }
}

/// A key with its plaintext: the only response that ever carries it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The full key. Shown this once; Keysmith keeps only a keyed hash.
    pub key: String,
}

impl CreatedKey {
    pub fn new(issued: &IssuedKey, tenant_slug: &str, now: OffsetDateTime) -> Self {
        Self {
            info: KeyInfo::new(&issued.row, tenant_slug, now),
            key: issued.key.expose().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedOld {
    pub id: String,
    /// `rotating`.
    #[schema(value_type = String)]
    pub status: KeyState,
    /// When the old key stops working: `min(its expiry, now + overlap)`.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotationResponse {
    pub new: CreatedKey,
    pub old: RotatedOld,
}

impl RotationResponse {
    pub fn new(rotation: &Rotation, tenant_slug: &str, now: OffsetDateTime) -> Self {
        let old = &rotation.old;
        Self {
            new: CreatedKey::new(&rotation.new, tenant_slug, now),
            old: RotatedOld {
                id: old.id.to_string(),
                status: old.status_at(now),
                expires_at: old.cutoff_at.unwrap_or(old.expires_at).rfc3339(),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyInfo>,
    pub next_cursor: Option<String>,
}
