//! `/admin/webhooks`: a tenant's signed webhook endpoints, their recent
//! deliveries, and create (secret shown once), delete and "send test event".
//! Managers act; viewers read.

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
    domain::WebhookEndpointId,
    domain::events::webhooks::{
        self, EVENTS, Endpoint, EventFilter, NewEndpoint, WebhookUrl,
        deliveries::{self, DeliveryRecord},
    },
    error::AppError,
    state::AppState,
};

/// Deliveries shown under each endpoint.
const DELIVERIES_SHOWN: usize = 10;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
}

pub struct Line {
    pub endpoint: Endpoint,
    pub created: String,
    pub deliveries: Vec<(DeliveryRecord, String)>,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage<'a> {
    nav: Nav,
    current: &'a Membership,
    csrf: &'a str,
    form_token: String,
    lines: Vec<Line>,
    can_manage: bool,
    /// Each event the form offers, and whether its box is ticked.
    events: Vec<(&'a str, bool)>,
    /// The URL as typed when the form was refused.
    url: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/webhook_secret.html")]
struct SecretShown<'a> {
    tenant: &'a str,
    url: &'a str,
    secret: &'a str,
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    page(&state, &admin, query.tenant.as_deref(), None).await
}

/// A refused create: why, and what was typed (shown again with a fresh token).
struct Refusal<'a> {
    error: String,
    form: &'a CreateForm,
}

async fn page(
    state: &AppState,
    admin: &Admin,
    tenant: Option<&str>,
    refusal: Option<Refusal<'_>>,
) -> Result<Response, PageError> {
    let (current, memberships) = admin.tenant(state, tenant).await?;
    let mut lines = Vec::new();
    for endpoint in webhooks::list(state.pool(), &current.tenant.id).await? {
        let mut history = deliveries::list(state.pool(), &current.tenant.id, &endpoint.id).await?;
        history.truncate(DELIVERIES_SHOWN);
        lines.push(Line {
            created: when(endpoint.created_at),
            deliveries: history
                .into_iter()
                .map(|d| {
                    let at = when(d.created_at);
                    (d, at)
                })
                .collect(),
            endpoint,
        });
    }
    let can_manage = current.role.can_manage_keys();
    let form_token = if can_manage {
        form_token::issue(state, admin).await?
    } else {
        String::new()
    };
    Ok(render(&WebhooksPage {
        nav: Nav::of_tenant(state, admin, Section::Webhooks, &current, &memberships).await?,
        csrf: &admin.user.csrf,
        current: &current,
        form_token,
        lines,
        can_manage,
        // A fresh form ticks every event; a refused one keeps the choice.
        events: EVENTS
            .iter()
            .map(|e| {
                let ticked = refusal
                    .as_ref()
                    .is_none_or(|r| r.form.events.iter().any(|t| t == e));
                (*e, ticked)
            })
            .collect(),
        url: refusal.as_ref().map_or("", |r| r.form.url.as_str()),
        error: refusal.map(|r| r.error),
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
    url: String,
    /// One field per ticked box, joined by the browser as `events=a&events=b`.
    #[serde(default)]
    events: Vec<String>,
}

const VIEWER: &str = "viewers can see webhooks but not change them";

pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    // `Form` cannot collect repeated keys into a Vec; parse the pairs by hand.
    let form = parse_form(&body);
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, VIEWER)
        .await?;
    if !form_token::spend(&state, &admin, &form.form_token).await? {
        return Err(PageError(AppError::Conflict(
            "this form was already submitted, and its secret was shown once. Open the page again to add another webhook".into(),
        )));
    }
    let new = WebhookUrl::parse(&form.url)
        .and_then(|url| {
            Ok(NewEndpoint {
                url,
                events: EventFilter::parse(&form.events)?,
            })
        })
        .map_err(AppError::from);
    let created = match new {
        Ok(new) => webhooks::create(
            state.pool(),
            &state.peppers,
            membership.tenant.for_webhooks(),
            new,
            webhooks::Admission::of(&state.config),
            &admin.actor(),
            state.now(),
        )
        .await
        .map_err(AppError::from),
        Err(err) => Err(err),
    };
    match created {
        Ok(created) => Ok(render(&SecretShown {
            tenant: &membership.tenant.slug,
            url: &created.endpoint.url,
            secret: created.secret.expose(),
        })),
        Err(err @ AppError::Validation(_)) => {
            let status = err.status();
            let refusal = Refusal {
                error: in_words_of_the_form(&err.to_string()),
                form: &form,
            };
            let page = page(&state, &admin, Some(&form.tenant), Some(refusal)).await?;
            Ok((status, page).into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

/// The domain names the API's fields (`url: …`); the form calls them by its labels.
fn in_words_of_the_form(message: &str) -> String {
    [("url: ", "“URL”: "), ("events: ", "“Events”: ")]
        .iter()
        .fold(message.to_owned(), |m, (api, label)| {
            m.replacen(api, label, 1)
        })
}

fn parse_form(body: &[u8]) -> CreateForm {
    let mut form = CreateForm::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "csrf" => form.csrf = value,
            "form_token" => form.form_token = value,
            "tenant" => form.tenant = value,
            "url" => form.url = value,
            "events" => form.events.push(value),
            _ => {}
        }
    }
    form
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    tenant: String,
}

pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<WebhookEndpointId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, VIEWER)
        .await?;
    webhooks::delete(
        state.pool(),
        membership.tenant.for_webhooks(),
        &id,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(back(&membership))
}

pub async fn send_test(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<WebhookEndpointId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, VIEWER)
        .await?;
    webhooks::send_test(
        state.pool(),
        membership.tenant.for_webhooks(),
        &id,
        state.now(),
    )
    .await?;
    Ok(back(&membership))
}

/// Enables an endpoint disabled after failing; its waiting deliveries go out
/// on the next round.
pub async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<WebhookEndpointId>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(&state, &headers, &form.csrf, &form.tenant, VIEWER)
        .await?;
    webhooks::enable(
        state.pool(),
        membership.tenant.for_webhooks(),
        &id,
        &admin.actor(),
        state.now(),
    )
    .await?;
    Ok(back(&membership))
}

fn back(membership: &Membership) -> Response {
    Redirect::to(&format!(
        "/admin/webhooks?tenant={}",
        membership.tenant.slug
    ))
    .into_response()
}
