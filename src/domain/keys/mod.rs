//! Keys: what a key is (its row, state, expiry and allowlists), and its life in
//! five files — `lifecycle` (create, rotate, revoke), `limits` (change a
//! key's limits), `queries` (read and list), `sweep` (what the clock does to keys),
//! `notices` (what those changes tell webhooks and the owner);
//! and what guards it outside: `leaks` (a scanner reports a key seen in public)
//! and `idempotency` (a retried create or rotation gets the first answer again).
//!
//! Every change runs in one transaction together with its audit event, and
//! state transitions are conditional updates (`WHERE status = 'active'`), so
//! two admins rotating the same key at once get one rotation and one `409`.

pub mod idempotency;
pub mod leaks;
mod lifecycle;
mod limits;
mod notices;
mod queries;
mod revocation;
mod sweep;

pub(crate) use lifecycle::create_for_grant;
pub use lifecycle::{Rotation, create, rotate};
pub use limits::{LimitsChange, set_limits};
pub use queries::{KeyFilter, get, list, management_expiring, state_of};
pub use revocation::revoke;
pub use sweep::{SweepReport, sweep};

use crate::domain::UnixTime;
use time::{Duration, OffsetDateTime};

use crate::{
    domain::error::{DomainError, DomainResult},
    domain::{KeyId, Name, Scope, ServiceUserId, TenantId, tenancy::tenants::Tenant},
};
use keysmith_verify::{
    ApiKey, Capabilities, KeyLimits,
    allowlist::{Allowlist, Pattern},
    limit::{Quota, RateLimit},
};

/// A key as stored, minus its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub service_user_id: ServiceUserId,
    pub name: String,
    pub prefix: String,
    pub hint: String,
    pub status: String,
    pub allowed_tools: Option<String>,
    pub allowed_resources: Option<String>,
    pub allowed_prompts: Option<String>,
    pub limits: Option<String>,
    pub scopes: String,
    pub created_at: UnixTime,
    pub created_by: String,
    pub expires_at: UnixTime,
    pub cutoff_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    pub revoked_reason: Option<String>,
    pub rotated_from: Option<KeyId>,
    pub rotated_to: Option<KeyId>,
    pub last_used_at: Option<UnixTime>,
}

const COLUMNS: &str = "id, tenant_id, service_user_id, name, prefix, hint, status, allowed_tools, allowed_resources, allowed_prompts, limits, scopes, \
    created_at, created_by, expires_at, cutoff_at, revoked_at, revoked_reason, rotated_from, rotated_to, last_used_at";

/// Lifecycle state: one definition, shared with the verifier.
pub use keysmith_verify::KeyState;

impl KeyRow {
    pub fn status_at(&self, now: OffsetDateTime) -> KeyState {
        KeyState::at(
            &self.status,
            self.expires_at.secs(),
            self.cutoff_at.map(UnixTime::secs),
            UnixTime::from(now).secs(),
        )
    }

    /// The tools, resources and prompts the key may use (least privilege).
    pub fn allowed(&self) -> Capabilities {
        Capabilities::from_storage(
            self.allowed_tools.as_deref(),
            self.allowed_resources.as_deref(),
            self.allowed_prompts.as_deref(),
        )
    }

    pub fn limits(&self) -> KeyLimits {
        KeyLimits::from_storage(self.limits.as_deref())
    }

    pub fn scopes(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }
}

/// How the caller chose the expiry.
#[derive(Debug, Clone, Copy)]
pub enum ExpiryRequest {
    /// The tenant's default lifetime.
    TenantDefault,
    At(OffsetDateTime),
    InDays(i64),
}

impl ExpiryRequest {
    /// The request from the two ways a client can say it: a moment or a
    /// number of days, at most one of them (`None`: the tenant's default).
    pub fn from_parts(
        at: Option<OffsetDateTime>,
        in_days: Option<i64>,
    ) -> DomainResult<Option<Self>> {
        match (at, in_days) {
            (Some(_), Some(_)) => Err(DomainError::validation(
                "give expires_at or expires_in_days, not both",
            )),
            (Some(at), None) => Ok(Some(Self::At(at))),
            (None, Some(days)) => Ok(Some(Self::InDays(days))),
            (None, None) => Ok(None),
        }
    }
}

/// A key's allowlists as a client gave them, each absent or a list
/// (least privilege: naming one leaves the others' kinds out).
pub fn capabilities<S: AsRef<str>>(
    tools: Option<&[S]>,
    resources: Option<&[S]>,
    prompts: Option<&[S]>,
) -> DomainResult<Capabilities> {
    Ok(Capabilities::new(
        allowlist("allowed_tools", tools)?,
        allowlist("allowed_resources", resources)?,
        allowlist("allowed_prompts", prompts)?,
    ))
}

/// One allowlist as a client gave it, its field named in the error.
fn allowlist<P: Pattern, S: AsRef<str>>(
    field: &str,
    raw: Option<&[S]>,
) -> DomainResult<Allowlist<P>> {
    raw.map_or(Ok(Allowlist::any()), |list| {
        Allowlist::from_list(list).map_err(|e| DomainError::validation(format!("{field}: {e}")))
    })
}

/// A key's limits as a client gave them (tool patterns already parsed).
pub fn limits(rate_limit: Option<RateLimit>, quota: Option<Quota>) -> DomainResult<KeyLimits> {
    KeyLimits::new(rate_limit, quota).map_err(|e| DomainError::validation(format!("limits: {e}")))
}

/// Resolves and checks an expiry against the tenant policy.
pub fn resolve_expiry(
    tenant: &Tenant,
    request: ExpiryRequest,
    now: OffsetDateTime,
) -> DomainResult<OffsetDateTime> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let latest = now + Duration::days(tenant.max_expiry_days);
    let at = match request {
        ExpiryRequest::TenantDefault => {
            now + Duration::days(tenant.default_expiry_days.min(tenant.max_expiry_days))
        }
        ExpiryRequest::InDays(days) if (1..=tenant.max_expiry_days).contains(&days) => {
            now + Duration::days(days)
        }
        ExpiryRequest::InDays(_) => {
            return Err(DomainError::validation(format!(
                "expires_in_days must be between 1 and {} (the tenant maximum)",
                tenant.max_expiry_days
            )));
        }
        ExpiryRequest::At(at) => at.replace_nanosecond(0).unwrap_or(at),
    };
    if at <= now {
        return Err(DomainError::validation("expires_at must be in the future"));
    }
    if at > latest {
        return Err(DomainError::validation(format!(
            "expires_at is beyond the tenant maximum of {} days",
            tenant.max_expiry_days
        )));
    }
    Ok(at)
}

#[derive(Debug)]
pub struct NewKey {
    pub service_user_id: ServiceUserId,
    pub name: Name,
    pub expiry: ExpiryRequest,
    pub allowed: Capabilities,
    pub scopes: Vec<Scope>,
    pub limits: KeyLimits,
}

/// A freshly minted key: the stored row and the plaintext, which exists only here.
#[derive(Debug)]
pub struct IssuedKey {
    pub row: KeyRow,
    pub key: ApiKey,
}
