//! `/admin/tenants`: the instance administrator's page. Creates tenants and
//! gives people a role in one. Nobody else may open it.

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
        Email, Name, TenantSlug,
        people::accounts::{self, Password, Role, TenantAdmin},
        people::totp,
        tenancy::tenants::{self, NewTenant, Tenant},
    },
    error::AppError,
    state::AppState,
};
use keysmith_verify::KeyPrefix;

/// What was typed into the two forms, shown again when one is refused.
#[derive(Debug, Default, Deserialize)]
pub struct TenantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    key_prefix: String,
}

#[derive(Default, Deserialize)]
pub struct AdminForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    /// Only for a new account; never echoed back into the page.
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for AdminForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminForm")
            .field("tenant", &self.tenant)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

pub struct TenantLine {
    pub tenant: Tenant,
    pub admins: Vec<TenantAdmin>,
    /// Its admins must use a second factor.
    pub requires_totp: bool,
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct TenantsPage<'a> {
    nav: Nav,
    csrf: &'a str,
    lines: Vec<TenantLine>,
    error: Option<String>,
    tenant_form: &'a TenantForm,
    admin_form: &'a AdminForm,
}

/// Only an instance administrator gets past this.
fn superadmin(admin: &Admin) -> Result<(), PageError> {
    if admin.user.superadmin {
        Ok(())
    } else {
        Err(PageError(AppError::Forbidden(
            "only instance administrators manage tenants",
        )))
    }
}

pub async fn show(State(state): State<AppState>, admin: Admin) -> Result<Response, PageError> {
    superadmin(&admin)?;
    page(
        &state,
        &admin,
        None,
        &TenantForm::default(),
        &AdminForm::default(),
    )
    .await
}

async fn page(
    state: &AppState,
    admin: &Admin,
    error: Option<String>,
    tenant_form: &TenantForm,
    admin_form: &AdminForm,
) -> Result<Response, PageError> {
    let memberships = admin.memberships(state).await?;
    let admins = accounts::tenant_admins(state.pool()).await?;
    let requiring = totp::requiring_tenants(state.pool()).await?;
    let lines = memberships
        .iter()
        .map(|m| TenantLine {
            requires_totp: requiring.contains(&m.tenant.id),
            admins: admins
                .iter()
                .filter(|a| a.tenant_id == m.tenant.id)
                .cloned()
                .collect(),
            tenant: m.tenant.clone(),
        })
        .collect();
    Ok(render(&TenantsPage {
        nav: Nav::new(admin, Section::Tenants, None, &memberships),
        csrf: &admin.user.csrf,
        lines,
        error,
        tenant_form,
        admin_form,
    }))
}

/// A refused form: the page again with the reason, and the status that says why.
async fn refused(
    state: &AppState,
    admin: &Admin,
    err: AppError,
    tenant_form: &TenantForm,
    admin_form: &AdminForm,
) -> Result<Response, PageError> {
    match err {
        AppError::Validation(_) | AppError::Conflict(_) | AppError::NotFound(_) => {
            let status = err.status();
            let page = page(state, admin, Some(err.to_string()), tenant_form, admin_form).await?;
            Ok((status, page).into_response())
        }
        err => Err(PageError(err)),
    }
}

fn parse_tenant(form: &TenantForm) -> Result<NewTenant, AppError> {
    let prefix = match form.key_prefix.trim() {
        "" => KeyPrefix::default(),
        raw => KeyPrefix::parse(raw).map_err(|_| {
            AppError::validation(
                "a key prefix is 2 to 16 lower-case letters or digits, starting with a letter",
            )
        })?,
    };
    Ok(NewTenant {
        slug: TenantSlug::parse(form.slug.trim())?,
        name: Name::parse("name", &form.name)?,
        key_prefix: prefix,
    })
}

pub async fn create_tenant(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<TenantForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let created = match parse_tenant(&form) {
        Ok(new) => tenants::create(state.pool(), new, state.now())
            .await
            .map_err(AppError::from),
        Err(err) => Err(err),
    };
    match created {
        Ok(_) => Ok(Redirect::to("/admin/tenants").into_response()),
        Err(err) => refused(&state, &admin, err, &form, &AdminForm::default()).await,
    }
}

pub async fn add_admin(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<AdminForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let added = async {
        let tenant = tenants::find_by_slug(state.pool(), &form.tenant)
            .await?
            .ok_or(AppError::NotFound("tenant"))?;
        let email = Email::parse(&form.email).map_err(|_| {
            AppError::validation("the admin's email must look like name@example.com")
        })?;
        let role = Role::parse(&form.role)
            .ok_or_else(|| AppError::validation("choose a role: viewer, admin or owner"))?;
        let password = match form.password.as_str() {
            "" => None,
            raw => Some(Password::parse(raw.to_owned())?),
        };
        let actor = admin.actor();
        accounts::add_to_tenant(
            state.pool(),
            &tenant.id,
            &email,
            role,
            password,
            &actor,
            state.now(),
        )
        .await?;
        Ok(())
    }
    .await;
    match added {
        Ok(_) => Ok(Redirect::to("/admin/tenants").into_response()),
        Err(err) => refused(&state, &admin, err, &TenantForm::default(), &form).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct TotpRequirementForm {
    csrf: String,
    tenant: String,
    /// `on` or `off`.
    require: String,
}

/// Makes a tenant require two-factor sign-in of its admins, or stop.
pub async fn set_totp_requirement(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<TotpRequirementForm>,
) -> Result<Response, PageError> {
    superadmin(&admin)?;
    admin.check_csrf(&headers, &form.csrf)?;
    let required = match form.require.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(PageError(AppError::validation("choose on or off"))),
    };
    totp::set_tenant_requirement(
        state.pool(),
        &form.tenant,
        required,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(Redirect::to("/admin/tenants").into_response())
}
