//! `/admin/oauth-grants`: the tenant's OAuth connections (which application
//! acts as which service user, within which scopes, approved by whom, when,
//! last used) and revoking one. Managers revoke; viewers read.

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    nav::{Nav, Section},
    page::{PageError, render, when},
};
use crate::{
    domain::{
        oauth::grants::{self, Grant},
        page::MAX_LIMIT,
    },
    state::AppState,
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
}

/// One row of the table, its moments already written for people.
pub struct Line {
    pub grant: Grant,
    pub scopes: String,
    pub approved: String,
    pub last_used: String,
    /// Past its absolute lifetime: its key expired with it.
    pub ended: bool,
}

#[derive(Template)]
#[template(path = "admin/oauth_grants.html")]
struct GrantsPage<'a> {
    nav: Nav,
    current: &'a Membership,
    csrf: &'a str,
    lines: Vec<Line>,
    can_manage: bool,
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (current, memberships) = admin.tenant(&state, query.tenant.as_deref()).await?;
    let now = crate::domain::UnixTime::from(state.now());
    let lines = grants::list(state.pool(), &current.tenant.id, None, MAX_LIMIT)
        .await?
        .into_iter()
        .map(|grant| Line {
            ended: grant.refresh_until <= now,
            scopes: grant.scope_list().join(" "),
            approved: when(grant.created_at),
            last_used: grant.last_used_at.map_or_else(|| "never".into(), when),
            grant,
        })
        .collect();
    Ok(render(&GrantsPage {
        nav: Nav::of_tenant(&state, &admin, Section::OAuthGrants, &current, &memberships).await?,
        csrf: &admin.user.csrf,
        can_manage: current.role.can_manage_keys(),
        current: &current,
        lines,
    }))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(
            &state,
            &headers,
            &form.csrf,
            &form.tenant,
            "viewers can see connections but not revoke them",
        )
        .await?;
    grants::revoke(
        state.pool(),
        &membership.tenant.id,
        &id,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/admin/oauth-grants?tenant={}",
        membership.tenant.slug
    ))
    .into_response())
}
