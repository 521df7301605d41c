//! `/api/v1/tenants/{tenant}/webhooks`: signed webhook endpoints and their deliveries.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiJson};
use crate::{
    domain::events::webhooks::{
        self, Endpoint, EventFilter, NewEndpoint, WebhookUrl,
        deliveries::{self, DeliveryRecord},
    },
    domain::{UnixTime, WebhookEndpointId},
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// https, or http to a loopback host.
    pub url: String,
    /// Any of `key.created`, `key.rotated`, `key.revoked`, `key.expiring`,
    /// `key.expired`, `service_user.disabled`.
    pub events: Vec<String>,
}

/// The created endpoint and its signing secret: shown this once, never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub endpoint: EndpointInfo,
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub items: Vec<EndpointInfo>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub items: Vec<Delivery>,
}

/// An endpoint as listed: never the secret (the API's shape of the domain's `Endpoint`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Endpoint)]
pub struct EndpointInfo {
    #[schema(value_type = String)]
    pub id: WebhookEndpointId,
    pub url: String,
    pub events: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: UnixTime,
    pub created_by: String,
    /// Failed attempts in a row (0 once one succeeds).
    pub consecutive_failures: i64,
    /// Set when the endpoint was disabled after too many failures; nothing
    /// is sent until it is enabled again.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<UnixTime>,
}

impl From<Endpoint> for EndpointInfo {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            events: e.events,
            created_at: e.created_at,
            created_by: e.created_by,
            consecutive_failures: e.consecutive_failures,
            disabled_at: e.disabled_at,
        }
    }
}

/// A delivery: never the body's signature or secret (the API's shape of the
/// domain's `DeliveryRecord`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryRecord)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    /// `pending` (retrying), `delivered` or `failed` (gave up after retries).
    pub status: String,
    pub attempts: i64,
    /// The receiver's last HTTP status code, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: UnixTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<UnixTime>,
}

impl From<DeliveryRecord> for Delivery {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestQueued {
    pub event_id: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing beside the new one, 0 to
    /// 72 (default 24). 0 drops it at once (a leaked secret).
    pub overlap_hours: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The new signing secret, shown this once.
    pub secret: String,
    /// Until when deliveries are also signed with the previous secret
    /// (absent with an overlap of 0).
    pub previous_signs_until: Option<String>,
}

#[utoipa::path(post, operation_id = "webhooks_create", path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook, description = "the secret is shown this once"),
        (status = 422, description = "invalid URL or events, or a refused target")),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> AppResult<(
    StatusCode,
    [(http::HeaderName, &'static str); 1],
    Json<CreatedWebhook>,
)> {
    let new = NewEndpoint {
        url: WebhookUrl::parse(&body.url)?,
        events: EventFilter::parse(&body.events)?,
    };
    let tenant = caller.tenant(&state, &tenant).await?;
    let created = webhooks::create(
        state.pool(),
        &state.peppers,
        tenant.for_webhooks(),
        new,
        webhooks::Admission::of(&state.config),
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        super::NO_STORE,
        Json(CreatedWebhook {
            secret: created.secret.expose().to_owned(),
            endpoint: created.endpoint.into(),
        }),
    ))
}

#[utoipa::path(get, operation_id = "webhooks_list", path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = WebhookList, description = "no secrets")),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
) -> AppResult<Json<WebhookList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    Ok(Json(WebhookList {
        items: webhooks::list(state.pool(), &tenant.id)
            .await?
            .into_iter()
            .map(EndpointInfo::from)
            .collect(),
    }))
}

#[utoipa::path(delete, operation_id = "webhooks_delete", path = "/api/v1/tenants/{tenant}/webhooks/{id}", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "webhook id")),
    responses((status = 204, description = "deleted with its delivery history"), (status = 404)),
    security(("management_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, WebhookEndpointId)>,
) -> AppResult<StatusCode> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let tenant = tenant.for_webhooks();
    webhooks::delete(state.pool(), tenant, &id, &caller.actor(), state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "webhooks_send_test", path = "/api/v1/tenants/{tenant}/webhooks/{id}/test", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "webhook id")),
    responses((status = 202, body = TestQueued, description = "a `webhook.test` event is queued"), (status = 404), (status = 409, description = "the endpoint is disabled"), (status = 429, description = "one test event per endpoint every 10 seconds")),
    security(("management_key" = [])))]
pub async fn send_test(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, WebhookEndpointId)>,
) -> AppResult<(StatusCode, Json<TestQueued>)> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let tenant = tenant.for_webhooks();
    let event_id = webhooks::send_test(state.pool(), tenant, &id, state.now()).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { event_id })))
}

#[utoipa::path(post, operation_id = "webhooks_enable", path = "/api/v1/tenants/{tenant}/webhooks/{id}/enable", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "webhook id")),
    responses((status = 204, description = "enabled again (after being disabled for failing), with a clean record"), (status = 404)),
    security(("management_key" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, WebhookEndpointId)>,
) -> AppResult<StatusCode> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let tenant = tenant.for_webhooks();
    webhooks::enable(state.pool(), tenant, &id, &caller.actor(), state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "webhooks_rotate_secret", path = "/api/v1/tenants/{tenant}/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "webhook id")),
    request_body = RotateSecret,
    responses((status = 201, body = RotatedSecret, description = "the new secret, shown once; during the overlap every delivery carries a `v1` signature under each secret"), (status = 404), (status = 422, description = "overlap out of range")),
    security(("management_key" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, WebhookEndpointId)>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> AppResult<(
    StatusCode,
    [(http::HeaderName, &'static str); 1],
    Json<RotatedSecret>,
)> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let overlap = time::Duration::hours(body.overlap_hours.unwrap_or(24));
    let now = state.now();
    let secret = webhooks::rotate_secret(
        state.pool(),
        &state.peppers,
        tenant.for_webhooks(),
        &id,
        overlap,
        &caller.actor(),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        super::NO_STORE,
        Json(RotatedSecret {
            secret: secret.expose().to_owned(),
            previous_signs_until: overlap
                .is_positive()
                .then(|| UnixTime::from(now + overlap).rfc3339()),
        }),
    ))
}

#[utoipa::path(get, operation_id = "webhooks_deliveries", path = "/api/v1/tenants/{tenant}/webhooks/{id}/deliveries", tag = "webhooks",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "webhook id")),
    responses((status = 200, body = DeliveryList, description = "newest first: status, attempts, last HTTP status and error")),
    security(("management_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, id)): Path<(String, WebhookEndpointId)>,
) -> AppResult<Json<DeliveryList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    webhooks::get(state.pool(), &tenant.id, &id).await?;
    Ok(Json(DeliveryList {
        items: deliveries::list(state.pool(), &tenant.id, &id)
            .await?
            .into_iter()
            .map(Delivery::from)
            .collect(),
    }))
}
