//! Editing, disabling and enabling a service user from the admin UI. Each
//! goes through the CSRF and role check; disabling refuses every key at once.

use crate::domain::{ServiceUserId, TenantId};
use axum::{
    Form,
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    page::{PageError, in_form_words},
    service_user_page::{EditForm, page},
};
use crate::{
    domain::{
        Description, Email, Name,
        service_users::{self, MANAGEMENT, ServiceUserChange},
    },
    error::AppError,
    state::AppState,
};

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    tenant: String,
    #[serde(default)]
    confirm: String,
}

/// The whole edit form as typed. The owner email stays required: it is
/// whom Keysmith tells before a key expires.
fn parse(form: &EditForm) -> Result<ServiceUserChange, AppError> {
    let owner = form.owner_email.trim();
    if owner.is_empty() {
        return Err(AppError::validation(
            "owner email is required: Keysmith writes to the owner when a key is rotated or about to expire",
        ));
    }
    Ok(ServiceUserChange {
        name: Some(Name::parse("name", &form.name)?),
        owner_email: Some(Email::parse(owner)?),
        description: Some(Description::parse(&form.description)?),
    })
}

/// The CLI and the expiry banner find management keys by their service
/// user's name, so that name neither goes away nor moves to another one.
async fn keep_management_name(
    state: &AppState,
    tenant_id: &TenantId,
    id: &ServiceUserId,
    change: &ServiceUserChange,
) -> Result<(), AppError> {
    let before = service_users::get(state.pool(), tenant_id, id).await?;
    let after = change
        .name
        .as_ref()
        .map_or(before.name.as_str(), Name::as_str);
    if before.name != after && (before.name == MANAGEMENT || after == MANAGEMENT) {
        return Err(AppError::validation(format!(
            "`{MANAGEMENT}` owns the tenant's management keys: it keeps its name, and no other service user takes it"
        )));
    }
    Ok(())
}

const REFUSAL: &str = "viewers can see service users but not change them";

fn back_to(membership: &Membership, id: &ServiceUserId) -> Response {
    Redirect::to(&format!(
        "/admin/service-users/{id}?tenant={}",
        membership.tenant.slug
    ))
    .into_response()
}

pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<ServiceUserId>,
    Form(form): Form<EditForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, REFUSAL)
        .await?;
    let tenant_id = &membership.tenant.id;
    let updated = match parse(&form) {
        Ok(change) => match keep_management_name(&state, tenant_id, &id, &change).await {
            Err(err) => Err(err),
            Ok(()) => {
                service_users::update(
                    state.pool(),
                    tenant_id,
                    &id,
                    change,
                    &admin.actor(),
                    state.now(),
                )
                .await
            }
        },
        Err(err) => Err(err),
    };
    match updated {
        Ok(_) => Ok(back_to(&membership, &id)),
        // Refused input: the same page again, with the reason and what was typed.
        Err(err @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = err.status();
            let (_, memberships) = admin.tenant(&state, Some(&form.tenant)).await?;
            let page = page(
                &state,
                &admin,
                &membership,
                &memberships,
                &id,
                Some(&form),
                Some(in_form_words(&err.to_string())),
            )
            .await?;
            Ok((status, page).into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

async fn set_disabled(
    state: &AppState,
    admin: &Admin,
    headers: &HeaderMap,
    id: &ServiceUserId,
    form: &StatusForm,
    disabled: bool,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(state, headers, &form.csrf, &form.tenant, REFUSAL)
        .await?;
    if disabled && form.confirm != "yes" {
        return Err(PageError(AppError::validation(
            "tick the confirmation box to disable the service user",
        )));
    }
    service_users::set_disabled(
        state.pool(),
        &membership.tenant.id,
        id,
        disabled,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(back_to(&membership, id))
}

pub async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<ServiceUserId>,
    Form(form): Form<StatusForm>,
) -> Result<Response, PageError> {
    set_disabled(&state, &admin, &headers, &id, &form, true).await
}

pub async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<ServiceUserId>,
    Form(form): Form<StatusForm>,
) -> Result<Response, PageError> {
    set_disabled(&state, &admin, &headers, &id, &form, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edit_form_is_parsed_whole() {
        let form = EditForm {
            name: "ci-bot".into(),
            owner_email: "team@example.com".into(),
            ..EditForm::default()
        };
        let change = parse(&form).expect("valid");
        assert!(
            matches!(change.description, Some(None)),
            "an empty description clears it"
        );
        let err = parse(&EditForm {
            owner_email: String::new(),
            ..form
        })
        .expect_err("refused");
        assert!(err.to_string().contains("owner email is required"));
    }
}
