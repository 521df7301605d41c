//! Invitations into a tenant. A tenant's key or admin never gives an account
//! a role it did not ask for: it invites an email, and the person with that
//! email accepts on their account page (a superadmin still grants directly).

use sqlx::AnyPool;
use time::{Duration, OffsetDateTime};

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::{
    Actor, AdminId, Email, TenantId, UnixTime, audit,
    people::accounts::{self, Role},
};

/// How long an invitation waits for its answer.
pub const INVITATION_LIFETIME: Duration = Duration::days(14);

/// Pending invitations one tenant may hold at once: the table stays small,
/// and no tenant fills it with addresses.
pub const MAX_PENDING_PER_TENANT: i64 = 100;

/// An invitation as its tenant sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invitation {
    pub email: String,
    pub role: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An invitation as the invited person sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Received {
    pub tenant_slug: String,
    pub tenant_name: String,
    pub role: String,
    pub expires_at: UnixTime,
}

/// Invites `email` into the tenant with `role`, replacing an earlier
/// invitation of the same email. The answer is the same whether or not the
/// email has an account; a person who already has a role here is a
/// conflict (their role is changed, not re-offered).
#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn invite(
    pool: &AnyPool,
    tenant_id: &TenantId,
    email: &Email,
    role: Role,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<Invitation> {
    let mut tx = crate::db::begin_write(pool).await?;
    crate::db::lock_tenant(&mut tx, pool, tenant_id.as_str()).await?;
    let member: Option<(String,)> = sqlx::query_as(
        "SELECT u.id FROM memberships m JOIN admin_users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND u.email = $2",
    )
    .bind(tenant_id)
    .bind(email.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if member.is_some() {
        return Err(DomainError::Conflict(format!(
            "{email} already has a role in this tenant: change it with PUT /admins/{{email}}"
        )));
    }
    sqlx::query(
        "DELETE FROM tenant_invitations WHERE tenant_id = $1 AND (email = $2 OR expires_at <= $3)",
    )
    .bind(tenant_id)
    .bind(email.as_str())
    .bind(UnixTime::from(now))
    .execute(&mut *tx)
    .await?;
    let (pending,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tenant_invitations WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await?;
    if pending >= MAX_PENDING_PER_TENANT {
        return Err(DomainError::validation(format!(
            "this tenant has {MAX_PENDING_PER_TENANT} pending invitations: withdraw some first"
        )));
    }
    let invitation = Invitation {
        email: email.as_str().to_owned(),
        role: role.as_str().to_owned(),
        created_at: UnixTime::from(now),
        expires_at: UnixTime::from(now + INVITATION_LIFETIME),
    };
    sqlx::query(
        "INSERT INTO tenant_invitations (tenant_id, email, role, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(&invitation.email)
    .bind(&invitation.role)
    .bind(actor.to_string())
    .bind(invitation.created_at)
    .bind(invitation.expires_at)
    .execute(&mut *tx)
    .await?;
    let what = format!("{email} as {}", role.as_str());
    record(&mut tx, tenant_id, actor, "admin.invite", &what, now).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// The tenant's pending invitations, by email.
pub async fn list(
    pool: &AnyPool,
    tenant_id: &TenantId,
    now: OffsetDateTime,
) -> DomainResult<Vec<Invitation>> {
    Ok(sqlx::query_as(
        "SELECT email, role, created_at, expires_at FROM tenant_invitations \
         WHERE tenant_id = $1 AND expires_at > $2 ORDER BY email",
    )
    .bind(tenant_id)
    .bind(UnixTime::from(now))
    .fetch_all(pool)
    .await?)
}

/// The tenant takes its invitation of `email` back.
#[tracing::instrument(skip_all, fields(tenant_id))]
pub async fn withdraw(
    pool: &AnyPool,
    tenant_id: &TenantId,
    email: &Email,
    actor: &Actor,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let gone = sqlx::query(
        "DELETE FROM tenant_invitations WHERE tenant_id = $1 AND email = $2 AND expires_at > $3",
    )
    .bind(tenant_id)
    .bind(email.as_str())
    .bind(UnixTime::from(now))
    .execute(&mut *tx)
    .await?;
    if gone.rows_affected() == 0 {
        return Err(DomainError::NotFound("invitation"));
    }
    record(
        &mut tx,
        tenant_id,
        actor,
        "admin.uninvite",
        email.as_str(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The invitations waiting for the account's email, by tenant.
pub async fn received(
    pool: &AnyPool,
    email: &str,
    now: OffsetDateTime,
) -> DomainResult<Vec<Received>> {
    Ok(sqlx::query_as(
        "SELECT t.slug AS tenant_slug, t.name AS tenant_name, i.role, i.expires_at \
         FROM tenant_invitations i JOIN tenants t ON t.id = i.tenant_id \
         WHERE i.email = $1 AND i.expires_at > $2 ORDER BY t.slug",
    )
    .bind(email)
    .bind(UnixTime::from(now))
    .fetch_all(pool)
    .await?)
}

/// The signed-in account answers the invitation of the tenant `slug`:
/// accepting gives it the offered role. Either way the invitation is used
/// up, once: of two answers at the same moment one finds it, the other
/// gets `404`.
#[tracing::instrument(skip_all, fields(accept))]
pub async fn answer(
    pool: &AnyPool,
    slug: &str,
    user_id: &AdminId,
    email: &str,
    accept: bool,
    now: OffsetDateTime,
) -> DomainResult<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let taken: Option<(TenantId, String)> = sqlx::query_as(
        "DELETE FROM tenant_invitations WHERE email = $1 AND expires_at > $2 \
         AND tenant_id = (SELECT id FROM tenants WHERE slug = $3) RETURNING tenant_id, role",
    )
    .bind(email)
    .bind(UnixTime::from(now))
    .bind(slug)
    .fetch_optional(&mut *tx)
    .await?;
    let (tenant_id, role) = taken.ok_or(DomainError::NotFound("invitation"))?;
    let actor = Actor::User {
        id: user_id.clone(),
        email: email.to_owned(),
    };
    if accept {
        let role = Role::parse(&role).ok_or(DomainError::NotFound("invitation"))?;
        accounts::set_role(&mut tx, &tenant_id, user_id, role, now).await?;
        let what = format!("{email} as {}", role.as_str());
        record(&mut tx, &tenant_id, &actor, "admin.accept", &what, now).await?;
    } else {
        record(&mut tx, &tenant_id, &actor, "admin.decline", email, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant_id: &TenantId,
    actor: &Actor,
    action: &'static str,
    what: &str,
    now: OffsetDateTime,
) -> DomainResult<()> {
    audit::record(
        &mut **tx,
        audit::NewAuditEvent::tenant_action(tenant_id, actor, action, Some(what), now),
    )
    .await
}
