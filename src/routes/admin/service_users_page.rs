//! `/admin/service-users`: the machine identities of a tenant, each with the
//! keys that still work, and a form to add one.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    nav::{Nav, Section},
    page::{PageError, in_form_words, render},
};
use crate::{
    domain::{
        Description, Email, Name,
        caps::TenantCaps,
        service_users::{self, KeyCounts, LiveKey, NewServiceUser},
    },
    error::AppError,
    state::AppState,
};

/// How many working keys are listed under each service user.
const KEYS_SHOWN: i64 = 5;

/// How many service users one page lists.
const PER_PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
    cursor: Option<String>,
}

pub struct Line {
    pub id: String,
    pub name: String,
    pub owner_email: String,
    pub description: String,
    pub created: String,
    /// Every key of it is refused until it is enabled again.
    pub disabled: bool,
    pub counts: KeyCounts,
    pub keys: Vec<LiveKey>,
}

/// What was typed into the create form, shown again when it is refused.
#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner_email: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "admin/service_users.html")]
struct ServiceUsersPage<'a> {
    nav: Nav,
    current: &'a Membership,
    csrf: &'a str,
    lines: Vec<Line>,
    /// The link to the next (older) page; absent on the last.
    next_cursor: Option<String>,
    can_manage: bool,
    error: Option<String>,
    form: &'a CreateForm,
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let result = page(
        &state,
        &admin,
        query.tenant.as_deref(),
        query.cursor.as_deref().filter(|c| !c.is_empty()),
        None,
        &CreateForm::default(),
    )
    .await;
    match result {
        // Only an admin with no tenant at all ends up here without asking for one.
        Err(err) if query.tenant.is_none() => admin.without_tenant(&state).await?.ok_or(err),
        other => other,
    }
}

async fn page(
    state: &AppState,
    admin: &Admin,
    tenant: Option<&str>,
    cursor: Option<&str>,
    error: Option<String>,
    form: &CreateForm,
) -> Result<Response, PageError> {
    let (current, memberships) = admin.tenant(state, tenant).await?;
    let tenant_id = &current.tenant.id;
    let now = state.now();
    let users = service_users::list(state.pool(), tenant_id, cursor, PER_PAGE).await?;
    let ids: Vec<_> = users.items.iter().map(|u| u.id.clone()).collect();
    let counts = service_users::key_counts(state.pool(), tenant_id, &ids, now).await?;
    let live = service_users::live_keys(state.pool(), tenant_id, &ids, KEYS_SHOWN, now).await?;
    let lines = users
        .items
        .into_iter()
        .map(|u| Line {
            counts: counts
                .iter()
                .find(|c| c.service_user_id == u.id)
                .cloned()
                .unwrap_or_default(),
            keys: live
                .iter()
                .filter(|k| k.service_user_id == u.id)
                .cloned()
                .collect(),
            created: u.created_at.date(),
            disabled: u.disabled_at.is_some(),
            owner_email: u.owner_email.unwrap_or_default(),
            description: u.description.unwrap_or_default(),
            name: u.name,
            id: u.id.to_string(),
        })
        .collect();
    Ok(render(&ServiceUsersPage {
        nav: Nav::of_tenant(state, admin, Section::ServiceUsers, &current, &memberships).await?,
        csrf: &admin.user.csrf,
        can_manage: current.role.can_manage_keys(),
        current: &current,
        lines,
        next_cursor: users.next_cursor,
        error,
        form,
    }))
}

fn parse(form: &CreateForm) -> Result<NewServiceUser, AppError> {
    let owner = form.owner_email.trim();
    if owner.is_empty() {
        return Err(AppError::validation(
            "owner email is required: Keysmith writes to the owner when a key is rotated or about to expire",
        ));
    }
    Ok(NewServiceUser {
        name: Name::parse("name", &form.name)?,
        owner_email: Some(Email::parse(owner)?),
        description: Description::parse(&form.description)?,
    })
}

pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(
            &state,
            &headers,
            &form.csrf,
            &form.tenant,
            "viewers can see service users but not create them",
        )
        .await?;
    let created = match parse(&form) {
        Ok(new) => {
            service_users::create(
                state.pool(),
                &membership.tenant.id,
                new,
                TenantCaps::of(&state.config).service_users,
                &admin.actor(),
                state.now(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match created {
        Ok(_) => Ok(Redirect::to(&format!(
            "/admin/service-users?tenant={}",
            membership.tenant.slug
        ))
        .into_response()),
        // Refused input: the same page again, with the reason and what was typed.
        Err(err @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = err.status();
            let page = page(
                &state,
                &admin,
                Some(&form.tenant),
                None,
                Some(in_form_words(&err.to_string())),
                &form,
            )
            .await?;
            Ok((status, page).into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn an_owner_email_is_required() {
        let form = CreateForm {
            name: "ci-bot".into(),
            ..CreateForm::default()
        };
        let err = parse(&form).expect_err("refused");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.to_string().contains("owner email is required"));
    }
}
