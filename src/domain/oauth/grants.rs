//! Grants of the authorization-code flow: a person of the tenant approved a
//! client to act as one service user within some scopes. Each grant mints
//! its own parent key (allowlists = the approved scopes, ending with the
//! grant), so revoking the grant revokes that key and every token on it
//! stops within a key revocation's bound.

use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::codes;
use crate::{
    db::{announce_key_change, begin_write},
    domain::error::{DomainError, DomainResult},
    domain::{
        Actor, KeyId, ServiceUserId, TenantId, UnixTime, audit,
        crypto::random,
        events::notice::{Notice, OAuthConnectedNotice},
        events::outbox,
        keys,
        tenancy::tenants::Tenant,
    },
};
use keysmith_verify::{Capabilities, Peppers, scope::ScopeSet};

/// A grant as listed (the API's shape of it lives with its routes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub service_user_id: ServiceUserId,
    pub service_user_name: String,
    /// The parent key every token of the grant hangs on.
    pub key_id: KeyId,
    /// JSON array as stored; see [`Grant::scope_list`].
    pub scopes: String,
    /// The MCP server (RFC 8707 resource) the grant's tokens are bound to.
    pub resource: String,
    /// Who approved it (`user:<email>`).
    pub approved_by: String,
    pub created_at: UnixTime,
    /// Latest token issued or refresh, or call made with one of its tokens.
    pub last_used_at: Option<UnixTime>,
    /// No refresh token of the grant lives past this.
    pub refresh_until: UnixTime,
    pub revoked_at: Option<UnixTime>,
    pub revoked_reason: Option<String>,
}

impl Grant {
    pub fn scope_set(&self) -> ScopeSet {
        ScopeSet::from_storage(&self.scopes)
    }

    pub fn scope_list(&self) -> Vec<String> {
        self.scope_set().iter().map(ToString::to_string).collect()
    }
}

/// The columns of [`Grant`], `g` the grant, `s` its service user, `k` its key.
const COLUMNS: &str = "g.id, g.client_id, g.client_name, g.service_user_id, s.name AS service_user_name, \
     g.key_id, g.scopes, g.resource, g.approved_by, g.created_at, \
     CASE WHEN k.last_used_at IS NOT NULL AND (g.last_used_at IS NULL OR k.last_used_at > g.last_used_at) \
          THEN k.last_used_at ELSE g.last_used_at END AS last_used_at, \
     g.refresh_until, g.revoked_at, g.revoked_reason";
/// Only live grants: a grant whose code was never redeemed is pending, shown
/// nowhere, and swept with the code (see [`super::pending`]).
const FROM: &str = "FROM oauth_grants g JOIN service_users s ON s.id = g.service_user_id \
     JOIN api_keys k ON k.id = g.key_id";
const REDEEMED: &str = "g.redeemed_at IS NOT NULL";

/// What the person approved on the consent page.
#[derive(Debug)]
pub struct Approval<'a> {
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub client_origin: &'a str,
    pub service_user_id: &'a ServiceUserId,
    /// Never more than the client asked for and the person ticked.
    pub scopes: &'a ScopeSet,
    pub redirect_uri: &'a str,
    /// Canonical (RFC 8707).
    pub resource: &'a str,
    pub code_challenge: &'a str,
}

/// A grant approved: its id and the authorization code (the plaintext
/// exists only here, on its way into the redirect).
#[derive(Debug)]
pub struct Approved {
    pub grant_id: String,
    pub code: codes::Code,
}

/// Records an approval: the grant (pending until its code is redeemed), its parent key (for the chosen service
/// user, allowlists narrowed to `scopes`, ending with the grant's absolute
/// lifetime), a code, the audit event `oauth.consent` and the email to the
/// service user's owner, in one transaction.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, client_id = approval.client_id))]
pub async fn approve(
    pool: &AnyPool,
    peppers: &Peppers,
    tenant: &Tenant,
    approval: Approval<'_>,
    key_cap: i64,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<Approved> {
    let mut tx = begin_write(pool).await?;
    let service_user: Option<(String, Option<UnixTime>)> = sqlx::query_as(
        "SELECT name, disabled_at FROM service_users WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&tenant.id)
    .bind(approval.service_user_id)
    .fetch_optional(&mut *tx)
    .await?;
    match service_user {
        None => return Err(DomainError::NotFound("service user")),
        Some((_, Some(_))) => {
            return Err(DomainError::validation(
                "that service user is disabled; choose another or enable it first",
            ));
        }
        Some(_) => {}
    }
    if approval.scopes.is_empty() {
        return Err(DomainError::validation("approve at least one scope"));
    }
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let lifetime = time::Duration::days(
        tenant
            .oauth_refresh_absolute_days
            .min(tenant.max_expiry_days),
    );
    let refresh_until = now + lifetime;
    let allowed = keysmith_verify::scope::narrow(&Capabilities::everything(), approval.scopes);
    let key_name: String = format!("OAuth: {}", approval.client_name)
        .chars()
        .take(100)
        .collect();
    let key = keys::create_for_grant(
        &mut tx,
        pool,
        peppers,
        tenant,
        (approval.service_user_id, &key_name),
        allowed,
        refresh_until,
        key_cap,
        actor,
        now,
    )
    .await?;
    let grant_id = random::base62(16);
    sqlx::query(
        "INSERT INTO oauth_grants (id, tenant_id, client_id, client_name, service_user_id, key_id, scopes, \
         resource, approved_by, created_at, refresh_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&grant_id)
    .bind(&tenant.id)
    .bind(approval.client_id)
    .bind(approval.client_name)
    .bind(approval.service_user_id)
    .bind(&key.id)
    .bind(approval.scopes.to_storage())
    .bind(approval.resource)
    .bind(actor.to_string())
    .bind(UnixTime::from(now))
    .bind(UnixTime::from(refresh_until))
    .execute(&mut *tx)
    .await?;
    let code = codes::insert(
        &mut tx,
        codes::NewCode {
            tenant_id: &tenant.id,
            grant_id: &grant_id,
            client_id: approval.client_id,
            redirect_uri: approval.redirect_uri,
            resource: approval.resource,
            code_challenge: approval.code_challenge,
        },
        now,
    )
    .await?;
    let scope_text = approval.scopes.to_string();
    let reason = format!(
        "{} ({}) for {}: {scope_text}",
        approval.client_name, approval.client_id, approval.resource
    );
    let mut event = audit::NewAuditEvent::key_action(
        &tenant.id,
        (&key.id, approval.service_user_id),
        actor,
        "oauth.consent",
        Some(&reason),
        now,
    );
    let subject = format!("grant {grant_id}");
    event.tool = Some(&subject);
    audit::record(&mut *tx, event).await?;
    let notice = |owner: &outbox::Owner| {
        Some(Notice::OAuthConnected(OAuthConnectedNotice {
            tenant_name: tenant.name.clone(),
            tenant_slug: tenant.slug.clone(),
            service_user: owner.service_user.clone(),
            client_name: approval.client_name.to_owned(),
            client_origin: approval.client_origin.to_owned(),
            resource: approval.resource.to_owned(),
            scopes: scope_text,
            approved_by: actor.describe(),
            approved_at: UnixTime::from(now),
        }))
    };
    outbox::enqueue_for_owner(&mut tx, key.about(), notice, now).await?;
    tx.commit().await?;
    tracing::info!(grant_id, key_id = %key.id, "oauth grant approved");
    Ok(Approved { grant_id, code })
}

/// The tenant's grants, newest first; `cursor` is `<created_at>.<id>`.
pub async fn list(
    pool: &AnyPool,
    tenant_id: &TenantId,
    cursor: Option<(UnixTime, String)>,
    limit: i64,
) -> DomainResult<Vec<Grant>> {
    let query = match &cursor {
        None => format!(
            "SELECT {COLUMNS} {FROM} WHERE g.tenant_id = $1 AND {REDEEMED} \
             ORDER BY g.created_at DESC, g.id DESC LIMIT $2"
        ),
        Some(_) => format!(
            "SELECT {COLUMNS} {FROM} WHERE g.tenant_id = $1 AND {REDEEMED} \
             AND (g.created_at < $3 OR (g.created_at = $3 AND g.id < $4)) \
             ORDER BY g.created_at DESC, g.id DESC LIMIT $2"
        ),
    };
    let mut query = sqlx::query_as(&query).bind(tenant_id).bind(limit);
    if let Some((at, id)) = cursor {
        query = query.bind(at).bind(id);
    }
    Ok(query.fetch_all(pool).await?)
}

/// One grant of the tenant; another tenant's is `None`.
pub async fn find(
    pool: &AnyPool,
    tenant_id: &TenantId,
    grant_id: &str,
) -> DomainResult<Option<Grant>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE g.tenant_id = $1 AND g.id = $2 AND {REDEEMED}"
    ))
    .bind(tenant_id)
    .bind(grant_id)
    .fetch_optional(pool)
    .await?)
}

/// Revokes a grant of the tenant (a person or a management key ending the
/// connection): `404` for an unknown, pending or another tenant's grant,
/// `409` if it was already revoked.
#[tracing::instrument(skip_all, fields(grant_id))]
pub async fn revoke(
    pool: &AnyPool,
    tenant_id: &TenantId,
    grant_id: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<Grant> {
    let mut tx = begin_write(pool).await?;
    let found: Option<(String, ServiceUserId, KeyId)> = sqlx::query_as(&format!(
        "SELECT id, service_user_id, key_id FROM oauth_grants \
         WHERE tenant_id = $1 AND id = $2 AND redeemed_at IS NOT NULL{}",
        crate::db::row_lock(pool)
    ))
    .bind(tenant_id)
    .bind(grant_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, service_user_id, key_id)) = found else {
        return Err(DomainError::NotFound("grant"));
    };
    let ended = end(
        &mut tx,
        pool,
        Ending {
            tenant_id,
            grant_id: &id,
            key: (&key_id, &service_user_id),
            reason: "revoked",
            action: "oauth.grant.revoke",
            actor: &actor.to_string(),
        },
        now,
    )
    .await?;
    if !ended {
        return Err(DomainError::Conflict("the grant is already revoked".into()));
    }
    tx.commit().await?;
    find(pool, tenant_id, grant_id)
        .await?
        .ok_or(DomainError::NotFound("grant"))
}

/// How a grant ends and who ends it, for [`end`].
pub(crate) struct Ending<'a> {
    pub tenant_id: &'a TenantId,
    pub grant_id: &'a str,
    pub key: (&'a KeyId, &'a ServiceUserId),
    pub reason: &'a str,
    pub action: &'a str,
    /// As the audit log names it (`user:…`, `key:…`, `oauth_client:…`).
    pub actor: &'a str,
}

/// Ends a grant inside `tx`: the grant, its parent key and every token on
/// it are revoked, layers elsewhere are told at commit (PostgreSQL), and
/// it is audited. False if it had already ended (nothing is written).
pub(crate) async fn end(
    tx: &mut Transaction<'_, Any>,
    pool: &AnyPool,
    ending: Ending<'_>,
    now: OffsetDateTime,
) -> DomainResult<bool> {
    let at = UnixTime::from(now);
    let done = sqlx::query(
        "UPDATE oauth_grants SET revoked_at = $1, revoked_reason = $2 \
         WHERE tenant_id = $3 AND id = $4 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(ending.reason)
    .bind(ending.tenant_id)
    .bind(ending.grant_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    let (key_id, service_user_id) = ending.key;
    sqlx::query(
        "UPDATE api_keys SET status = 'revoked', revoked_at = $1, revoked_reason = $2 \
         WHERE tenant_id = $3 AND id = $4 AND status IN ('active', 'rotating')",
    )
    .bind(at)
    .bind(format!("oauth grant {}", ending.reason))
    .bind(ending.tenant_id)
    .bind(key_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND grant_id = $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(ending.tenant_id)
    .bind(ending.grant_id)
    .execute(&mut **tx)
    .await?;
    let subject = format!("grant {}", ending.grant_id);
    audit::record(
        &mut **tx,
        audit::NewAuditEvent {
            tenant_id: ending.tenant_id,
            key_id: Some(key_id),
            service_user_id: Some(service_user_id),
            actor: ending.actor.to_owned(),
            action: ending.action,
            tool: Some(&subject),
            outcome: "ok",
            reason: Some(ending.reason),
            request_id: None,
            at: now,
        },
    )
    .await?;
    announce_key_change(tx, pool, key_id.as_str()).await?;
    Ok(true)
}
