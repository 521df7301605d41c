//! `/admin/accounts` (superadmins): every admin account with its roles;
//! disable or enable it, reset its password, change or remove a tenant role.
//! Each action ends the account's sessions where it lowers what they may do,
//! and is audited.

use askama::Template;
use axum::{
    Form,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::Admin,
    nav::{Nav, Section},
    page::{PageError, render},
};
use crate::{
    domain::{
        Email, TenantId,
        people::accounts::{self, Password, Role},
        people::lifecycle,
        people::totp,
        tenancy::tenants,
    },
    error::AppError,
    state::AppState,
};

pub struct AccountRow {
    pub line: lifecycle::AccountLine,
    /// `(tenant slug, role)`.
    pub roles: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage<'a> {
    nav: Nav,
    csrf: &'a str,
    me: &'a str,
    rows: Vec<AccountRow>,
    tenants: Vec<String>,
    error: Option<String>,
}

fn superadmin(admin: &Admin) -> Result<(), PageError> {
    if admin.user.superadmin {
        Ok(())
    } else {
        Err(PageError(AppError::Forbidden(
            "only instance administrators manage accounts",
        )))
    }
}

async fn page(
    state: &AppState,
    admin: &Admin,
    error: Option<String>,
) -> Result<Response, PageError> {
    let memberships = admin.memberships(state).await?;
    let roles = accounts::tenant_admins(state.pool()).await?;
    let slug_of = |tenant_id: &TenantId| {
        memberships
            .iter()
            .find(|m| &m.tenant.id == tenant_id)
            .map(|m| m.tenant.slug.clone())
    };
    let rows = lifecycle::list(state.pool())
        .await?
        .into_iter()
        .map(|line| AccountRow {
            roles: roles
                .iter()
                .filter(|r| r.email == line.email)
                .filter_map(|r| Some((slug_of(&r.tenant_id)?, r.role.clone())))
                .collect(),
            line,
        })
        .collect();
    Ok(render(&AccountsPage {
        nav: Nav::new(admin, Section::Accounts, None, &memberships),
        csrf: &admin.user.csrf,
        me: &admin.user.email,
        rows,
        tenants: memberships.iter().map(|m| m.tenant.slug.clone()).collect(),
        error,
    }))
}

pub async fn show(State(state): State<AppState>, admin: Admin) -> Result<Response, PageError> {
    superadmin(&admin)?;
    page(&state, &admin, None).await
}

/// Back to the list, or the list again with why the action was refused.
async fn done(
    state: &AppState,
    admin: &Admin,
    result: Result<(), AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(Redirect::to("/admin/accounts").into_response()),
        Err(err @ (AppError::Validation(_) | AppError::NotFound(_) | AppError::Conflict(_))) => {
            let status = err.status();
            Ok((status, page(state, admin, Some(err.to_string())).await?).into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

/// Refuses an action on the superadmin's own account: locking oneself out
/// is never what was meant; their own password is changed on /admin/account.
fn not_self(admin: &Admin, email: &str) -> Result<(), AppError> {
    if email.trim().eq_ignore_ascii_case(&admin.user.email) {
        return Err(AppError::validation(
            "that is your own account: change your password on Your account, and ask another instance administrator for the rest",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    email: String,
    /// `disable` or `enable`.
    action: String,
}

pub async fn set_status(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<StatusForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let result = async {
        not_self(&admin, &form.email)?;
        let disabled = match form.action.as_str() {
            "disable" => true,
            "enable" => false,
            _ => return Err(AppError::validation("choose disable or enable")),
        };
        lifecycle::set_disabled(
            state.pool(),
            &form.email,
            disabled,
            &admin.actor(),
            state.now(),
        )
        .await?;
        Ok(())
    }
    .await;
    done(&state, &admin, result).await
}

/// The temporary password is never echoed back into the page.
#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    email: String,
    password: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let result = async {
        not_self(&admin, &form.email)?;
        let temporary = Password::parse(form.password.clone())?;
        lifecycle::reset_password(
            state.pool(),
            &form.email,
            temporary,
            &admin.actor(),
            state.now(),
        )
        .await?;
        Ok(())
    }
    .await;
    done(&state, &admin, result).await
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    csrf: String,
    email: String,
    tenant: String,
    /// A role, or `none` to remove it.
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let result = async {
        let tenant = tenants::find_by_slug(state.pool(), &form.tenant)
            .await?
            .ok_or(AppError::NotFound("tenant"))?;
        if form.role == "none" {
            return Ok(lifecycle::remove_role(
                state.pool(),
                &tenant.id,
                &form.email,
                &admin.actor(),
                state.now(),
            )
            .await?);
        }
        let role = Role::parse(&form.role)
            .ok_or_else(|| AppError::validation("choose a role: viewer, admin, owner or none"))?;
        let email = Email::parse(&form.email)
            .map_err(|_| AppError::validation("the email must look like name@example.com"))?;
        accounts::add_to_tenant(
            state.pool(),
            &tenant.id,
            &email,
            role,
            None,
            &admin.actor(),
            state.now(),
        )
        .await?;
        Ok(())
    }
    .await;
    done(&state, &admin, result).await
}

#[derive(Debug, Deserialize)]
pub struct TotpResetForm {
    csrf: String,
    email: String,
}

/// Turns off an account's second factor (its device was lost): it signs in
/// with its password again and, if required, sets up a new one.
pub async fn reset_totp(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<TotpResetForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let result = async {
        not_self(&admin, &form.email)?;
        totp::reset(state.pool(), &form.email, &admin.actor(), state.now()).await?;
        Ok(())
    }
    .await;
    done(&state, &admin, result).await
}
