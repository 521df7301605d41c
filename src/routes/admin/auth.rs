//! Who is signed in, which tenant they act in, and the CSRF check every form goes through.

use crate::domain::{AdminId, UnixTime, values::unix_time};
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::page::PageError;
use crate::{
    domain::{Actor, people::accounts::Role, people::lifecycle, tenancy::tenants::Tenant},
    error::AppError,
    state::AppState,
};

/// What the session remembers about the signed-in admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub user_id: AdminId,
    pub email: String,
    pub superadmin: bool,
    /// Per-session CSRF token, sent back in every form.
    pub csrf: String,
    #[serde(with = "unix_time::as_secs")]
    pub signed_in_at: UnixTime,
    /// The account's session epoch at sign-in; a different one in the
    /// database means this session was ended (account disabled, role changed…).
    pub epoch: i64,
}

pub const SESSION_KEY: &str = "admin";
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone)]
pub struct Admin {
    pub user: SignedIn,
    pub session: Session,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_sign_in = || Redirect::to("/admin/sign-in").into_response();
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, msg)| (status, msg).into_response())?;
        let user: Option<SignedIn> = session.get(SESSION_KEY).await.map_err(|_| to_sign_in())?;
        let Some(mut user) = user else {
            return Err(to_sign_in());
        };
        // Every request re-reads the account (one primary-key row), so a
        // disabled account, a demoted superadmin or ended sessions take
        // effect on the very next request, not when the session expires.
        let account = lifecycle::state(state.pool(), &user.user_id)
            .await
            .map_err(|err| PageError(err.into()).into_response())?;
        let expired = (UnixTime::from(state.now()) - user.signed_in_at).whole_seconds()
            > ABSOLUTE_TIMEOUT_SECS;
        let Some(account) = account.filter(|a| a.admits(user.epoch) && !expired) else {
            let _ = session.flush().await;
            return Err(to_sign_in());
        };
        user.superadmin = account.is_superadmin != 0;
        // After a password reset the account may only choose a new password
        // (or leave): the temporary one was known to someone else.
        if account.must_change_password != 0
            && !matches!(
                parts.uri.path(),
                "/admin/account" | "/admin/account/password" | "/admin/sign-out"
            )
        {
            return Err(Redirect::to("/admin/account").into_response());
        }
        // A second factor is required here but not set up yet: set it up first
        // (after a password change the account owes: the password page
        // would otherwise send here and here back, a redirect loop).
        let totp_required = state.config.require_totp || account.totp_required_by_tenants > 0;
        if totp_required
            && account.totp_enabled_at.is_none()
            && account.must_change_password == 0
            && !matches!(parts.uri.path(), "/admin/account/totp" | "/admin/sign-out")
        {
            return Err(Redirect::to("/admin/account/totp").into_response());
        }
        Ok(Self { user, session })
    }
}

/// A tenant the admin may act in, with their role there.
#[derive(Debug, Clone)]
pub struct Membership {
    pub tenant: Tenant,
    pub role: Role,
}

impl Admin {
    /// This admin, as the audit log names them.
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.user.user_id.clone(),
            email: self.user.email.clone(),
        }
    }

    /// Keeps this session going under the account's new `epoch` (after its
    /// own password change, which ended every other session), with a new id.
    pub async fn renew(&mut self, epoch: i64) -> Result<(), AppError> {
        let session_error =
            |e: tower_sessions::session::Error| AppError::Internal(anyhow::anyhow!("session: {e}"));
        self.user.epoch = epoch;
        self.session.cycle_id().await.map_err(session_error)?;
        self.session
            .insert(SESSION_KEY, self.user.clone())
            .await
            .map_err(session_error)
    }

    /// Tenants this admin belongs to (a superadmin: all, as owner).
    pub async fn memberships(&self, state: &AppState) -> Result<Vec<Membership>, AppError> {
        if self.user.superadmin {
            let tenants = crate::domain::tenancy::tenants::list(state.pool()).await?;
            return Ok(tenants
                .into_iter()
                .map(|tenant| Membership {
                    tenant,
                    role: Role::Owner,
                })
                .collect());
        }
        let roles =
            crate::domain::tenancy::tenants::with_roles_of(state.pool(), &self.user.user_id)
                .await?;
        Ok(roles
            .into_iter()
            .filter_map(|r| {
                Role::parse(&r.role).map(|role| Membership {
                    tenant: r.tenant,
                    role,
                })
            })
            .collect())
    }

    /// The tenant named by `slug` (or the first one), if the admin belongs to it:
    /// any other is `404`, exactly as if it did not exist.
    pub async fn tenant(
        &self,
        state: &AppState,
        slug: Option<&str>,
    ) -> Result<(Membership, Vec<Membership>), PageError> {
        let all = self.memberships(state).await?;
        let chosen = match slug {
            Some(slug) => all.iter().find(|m| m.tenant.slug == slug),
            None => all.first(),
        }
        .cloned()
        .ok_or(PageError(AppError::NotFound("tenant")))?;
        Ok((chosen, all))
    }

    /// For a page opened without a tenant by an admin who has none yet: a
    /// superadmin goes to create one, anyone else is told whom to ask.
    pub async fn without_tenant(&self, state: &AppState) -> Result<Option<Response>, PageError> {
        if !self.memberships(state).await?.is_empty() {
            return Ok(None);
        }
        Ok(Some(if self.user.superadmin {
            Redirect::to("/admin/tenants").into_response()
        } else {
            super::page::notice(
                http::StatusCode::OK,
                "No tenant yet",
                "You are not an admin of any tenant yet. Ask an instance administrator to add you to one.".into(),
            )
        }))
    }

    /// The tenant a state-changing form acts in, once the request passed the
    /// CSRF check and the admin's role there may change things; a viewer
    /// gets `refusal` (403), another tenant is 404.
    pub async fn manager_of(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        csrf: &str,
        tenant: &str,
        refusal: &'static str,
    ) -> Result<Membership, PageError> {
        self.check_csrf(headers, csrf)?;
        let (membership, _) = self.tenant(state, Some(tenant)).await?;
        if !membership.role.can_manage_keys() {
            return Err(PageError(AppError::Forbidden(refusal)));
        }
        Ok(membership)
    }

    /// Refuses a state-changing request that is cross-site or lacks this
    /// session's token (compared in constant time).
    pub fn check_csrf(&self, headers: &HeaderMap, token: &str) -> Result<(), PageError> {
        if !same_origin(headers) || !bool::from(self.user.csrf.as_bytes().ct_eq(token.as_bytes())) {
            return Err(PageError(AppError::Forbidden(
                "the form expired or came from another site; reload the page and try again",
            )));
        }
        Ok(())
    }
}

/// Browsers say where a request comes from: refuse anything not same-origin.
/// `Sec-Fetch-Site` decides when present (every current browser sends it);
/// otherwise a present `Origin` must be this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (
        headers.get("origin").and_then(|v| v.to_str().ok()),
        headers.get("host").and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}
