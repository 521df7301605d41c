//! `/admin/oauth-clients`: the OAuth clients of a tenant (pre-registered
//! and dynamically registered), pre-registering one (a confidential
//! client's secret shown once) and deleting one (its connections end).
//! Managers act; viewers read. Whether clients may register themselves is
//! tenant policy (`/admin/policy`), shown here.

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
    form_token,
    nav::{Nav, Section},
    page::{PageError, render, when},
};
use crate::{
    domain::oauth::clients::store::{self, ClientMetadata, RawMetadata, StoredClient},
    error::AppError,
    routes::api::oauth_clients::pre_register,
    state::AppState,
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
}

pub struct Line {
    pub client: StoredClient,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/oauth_clients.html")]
struct ClientsPage<'a> {
    nav: Nav,
    current: &'a Membership,
    csrf: &'a str,
    form_token: String,
    lines: Vec<Line>,
    registration_open: bool,
    issuer: String,
    can_manage: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/oauth_client_secret.html")]
struct SecretShown<'a> {
    tenant: &'a str,
    name: &'a str,
    client_id: &'a str,
    secret: &'a str,
}

const VIEWER: &str = "viewers can see OAuth clients but not change them";

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    page(&state, &admin, query.tenant.as_deref(), None).await
}

async fn page(
    state: &AppState,
    admin: &Admin,
    tenant: Option<&str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let (current, memberships) = admin.tenant(state, tenant).await?;
    let lines = store::list(state.pool(), &current.tenant.id)
        .await?
        .into_iter()
        .map(|client| Line {
            created: when(client.created_at),
            client,
        })
        .collect();
    let can_manage = current.role.can_manage_keys();
    let form_token = if can_manage {
        form_token::issue(state, admin).await?
    } else {
        String::new()
    };
    Ok(render(&ClientsPage {
        nav: Nav::of_tenant(state, admin, Section::OAuthClients, &current, &memberships).await?,
        csrf: &admin.user.csrf,
        registration_open: current.tenant.registration_open(),
        issuer: crate::domain::oauth::issuer(&state.config.public_url, &current.tenant.slug),
        current: &current,
        form_token,
        lines,
        can_manage,
        error,
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    client_name: String,
    /// One redirect URI per line.
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    auth_method: String,
}

pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, VIEWER)
        .await?;
    if !form_token::spend(&state, &admin, &form.form_token).await? {
        return Err(PageError(AppError::Conflict(
            "this form was already submitted, and its secret was shown once. Open the page again to add another client".into(),
        )));
    }
    let created = match metadata_of(&form) {
        Ok(metadata) => pre_register(&state, &membership.tenant.id, metadata, &admin.actor()).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(created) => match &created.secret {
            Some(secret) => Ok(render(&SecretShown {
                tenant: &membership.tenant.slug,
                name: &created.client.client_name,
                client_id: &created.client.client_id,
                secret: secret.expose(),
            })),
            None => Ok(back(&membership)),
        },
        Err(err @ AppError::Validation(_)) => {
            let status = err.status();
            let page = page(&state, &admin, Some(&form.tenant), Some(err.to_string())).await?;
            Ok((status, page).into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

fn metadata_of(form: &CreateForm) -> Result<ClientMetadata, AppError> {
    if form.client_name.trim().is_empty() {
        return Err(AppError::Validation(
            "Name: give the name people will see when they approve it".into(),
        ));
    }
    let redirect_uris = form
        .redirect_uris
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(ClientMetadata::parse(RawMetadata {
        redirect_uris: Some(redirect_uris),
        client_name: Some(form.client_name.clone()),
        token_endpoint_auth_method: Some(form.auth_method.clone()),
        ..RawMetadata::default()
    })
    .map_err(crate::domain::DomainError::from)?)
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
}

pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, VIEWER)
        .await?;
    let tenant_id = &membership.tenant.id;
    if !store::delete(
        state.pool(),
        tenant_id,
        &client_id,
        &admin.actor(),
        state.now(),
    )
    .await?
    {
        return Err(PageError(AppError::NotFound("OAuth client")));
    }
    Ok(back(&membership))
}

fn back(membership: &Membership) -> Response {
    Redirect::to(&format!(
        "/admin/oauth-clients?tenant={}",
        membership.tenant.slug
    ))
    .into_response()
}
