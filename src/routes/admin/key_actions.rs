//! Creating, rotating and revoking keys from the admin UI. The plaintext is
//! on the response to the POST only: never in a URL, a redirect or a GET.

use crate::domain::KeyId;
use askama::Template;
use axum::{
    Form,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    form_token,
    key_detail::{self, DetailQuery, Refused},
    key_form::{self, KeyForm, KeyFormErrors},
    keys_page::{self, ListQuery, Retry},
    limits_form::LimitsForm,
    page::{PageError, render, when},
};
use crate::{
    domain::{Name, caps::TenantCaps, keys},
    error::AppError,
    state::AppState,
};

#[derive(Template)]
#[template(path = "admin/key_shown.html")]
struct KeyShown<'a> {
    tenant: &'a str,
    key_id: &'a str,
    name: &'a str,
    plaintext: &'a str,
    expires: String,
    /// After a rotation: the old key and when it stops working.
    old: Option<(String, String)>,
}

/// A manager of `tenant`, with a valid CSRF token and an unspent form token.
async fn authorize(
    state: &AppState,
    admin: &Admin,
    headers: &HeaderMap,
    csrf: &str,
    tenant: &str,
    token: Option<&str>,
) -> Result<Membership, PageError> {
    let membership = admin
        .manager_of(
            state,
            headers,
            csrf,
            tenant,
            "viewers can see keys but not create, rotate or revoke them",
        )
        .await?;
    if let Some(token) = token
        && !form_token::spend(state, admin, token).await?
    {
        return Err(PageError(AppError::Conflict(
            "this form was already submitted, and its key was shown once. Nothing new was created; open the page again to create another key".into(),
        )));
    }
    Ok(membership)
}

/// Creates a key and shows it once; refused input shows the list again with
/// the form as typed, every problem beside its field, and a fresh form token.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    let membership = authorize(
        &state,
        &admin,
        &headers,
        &form.csrf,
        &form.tenant,
        Some(&form.form_token),
    )
    .await?;
    let errors = match key_form::check(&state, &membership.tenant, &form).await {
        Err(errors) => errors,
        Ok(new) => {
            let created = keys::create(
                state.pool(),
                &state.peppers,
                &membership.tenant,
                new,
                TenantCaps::of(&state.config).keys,
                &admin.actor(),
                state.now(),
            )
            .await;
            match created {
                Ok(issued) => {
                    return Ok(render(&KeyShown {
                        tenant: &membership.tenant.slug,
                        key_id: issued.row.id.as_str(),
                        name: &issued.row.name,
                        plaintext: issued.key.expose(),
                        expires: when(issued.row.expires_at),
                        old: None,
                    }));
                }
                Err(
                    err @ (AppError::Validation(_) | AppError::Conflict(_) | AppError::NotFound(_)),
                ) => KeyFormErrors::from_refusal(&err),
                Err(err) => return Err(PageError(err)),
            }
        }
    };
    let query = ListQuery::of_tenant(&membership.tenant.slug);
    let retry = Retry { form, errors };
    let page = keys_page::page(&state, &admin, query, Some(retry)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    tenant: String,
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

pub async fn rotate(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<KeyId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let membership = authorize(
        &state,
        &admin,
        &headers,
        &form.csrf,
        &form.tenant,
        Some(&form.form_token),
    )
    .await?;
    let rotation = keys::rotate(
        state.pool(),
        &state.peppers,
        &membership.tenant,
        &id,
        None,
        TenantCaps::of(&state.config).keys,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(render(&KeyShown {
        tenant: &membership.tenant.slug,
        key_id: rotation.new.row.id.as_str(),
        name: &rotation.new.row.name,
        plaintext: rotation.new.key.expose(),
        expires: when(rotation.new.row.expires_at),
        old: Some((
            rotation.old.id.to_string(),
            when(rotation.old.cutoff_at.unwrap_or(rotation.old.expires_at)),
        )),
    }))
}

pub async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<KeyId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let membership = authorize(&state, &admin, &headers, &form.csrf, &form.tenant, None).await?;
    if form.confirm != "yes" {
        return Err(PageError(AppError::validation(
            "tick the confirmation box to revoke the key",
        )));
    }
    let reason = if form.reason.trim().is_empty() {
        "revoked in the admin UI".to_owned()
    } else {
        Name::parse("reason", &form.reason)?.as_str().to_owned()
    };
    keys::revoke(
        state.pool(),
        &membership.tenant,
        &id,
        &reason,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/admin/api-keys/{id}?tenant={}",
        membership.tenant.slug
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct LimitsEdit {
    csrf: String,
    tenant: String,
    #[serde(flatten)]
    limits: LimitsForm,
}

/// Replaces the key's limits with what the form says (empty fields: none).
/// Refused: the key page again, with the reason and what was typed.
pub async fn set_limits(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<KeyId>,
    Form(form): Form<LimitsEdit>,
) -> Result<Response, PageError> {
    let membership = authorize(&state, &admin, &headers, &form.csrf, &form.tenant, None).await?;
    let changed: Result<_, AppError> = async {
        let limits = form.limits.parse()?;
        let change = keys::LimitsChange {
            rate_limit: Some(limits.rate_limit),
            quota: Some(limits.quota),
        };
        let (actor, now) = (admin.actor(), state.now());
        keys::set_limits(state.pool(), &membership.tenant, &id, change, &actor, now).await
    }
    .await;
    let err = match changed {
        Ok(_) => {
            let back = format!("/admin/api-keys/{id}?tenant={}", membership.tenant.slug);
            return Ok(Redirect::to(&back).into_response());
        }
        Err(err @ AppError::Validation(_)) => err,
        Err(err) => return Err(PageError(err)),
    };
    let query = DetailQuery {
        tenant: Some(form.tenant),
        cursor: None,
        kind: None,
    };
    let (status, error) = (err.status(), err.to_string());
    let refused = Refused {
        form: form.limits,
        error,
    };
    let page = key_detail::page(&state, &admin, &id, query, Some(refused)).await?;
    Ok((status, page).into_response())
}
