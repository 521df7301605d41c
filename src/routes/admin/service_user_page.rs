//! `/admin/service-users/{id}`: one service user, its edit form, and the
//! disable and enable buttons (handled in `service_user_actions`).

use crate::domain::ServiceUserId;
use askama::Template;
use axum::{
    extract::{Path, Query, State},
    response::Response,
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    nav::{Nav, Section},
    page::{PageError, render, when},
};
use crate::{
    domain::tenancy::service_users::{self, KeyCounts, ServiceUser},
    state::AppState,
};

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    tenant: Option<String>,
}

/// What was typed into the edit form, shown again when it is refused.
#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) tenant: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) owner_email: String,
    #[serde(default)]
    pub(super) description: String,
}

impl EditForm {
    fn of(user: &ServiceUser) -> Self {
        Self {
            name: user.name.clone(),
            owner_email: user.owner_email.clone().unwrap_or_default(),
            description: user.description.clone().unwrap_or_default(),
            ..Self::default()
        }
    }
}

#[derive(Template)]
#[template(path = "admin/service_user.html")]
struct ServiceUserPage<'a> {
    nav: Nav,
    current: &'a Membership,
    csrf: &'a str,
    user: ServiceUser,
    /// When it was disabled, if it is.
    disabled: Option<String>,
    created: String,
    counts: KeyCounts,
    can_manage: bool,
    form: &'a EditForm,
    error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<ServiceUserId>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, PageError> {
    let (current, memberships) = admin.tenant(&state, query.tenant.as_deref()).await?;
    page(&state, &admin, &current, &memberships, &id, None, None).await
}

pub(super) async fn page(
    state: &AppState,
    admin: &Admin,
    current: &Membership,
    memberships: &[Membership],
    id: &ServiceUserId,
    form: Option<&EditForm>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let tenant_id = &current.tenant.id;
    let user = service_users::get(state.pool(), tenant_id, id).await?;
    let counts = service_users::key_counts(
        state.pool(),
        tenant_id,
        std::slice::from_ref(id),
        state.now(),
    )
    .await?
    .into_iter()
    .find(|c| c.service_user_id == user.id)
    .unwrap_or_default();
    let shown = EditForm::of(&user);
    Ok(render(&ServiceUserPage {
        nav: Nav::of_tenant(state, admin, Section::ServiceUsers, current, memberships).await?,
        current,
        csrf: &admin.user.csrf,
        disabled: user.disabled_at.map(when),
        created: user.created_at.date(),
        counts,
        can_manage: current.role.can_manage_keys(),
        form: form.unwrap_or(&shown),
        error,
        user,
    }))
}
