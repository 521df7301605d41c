//! `POST {issuer}/register`: dynamic client registration (RFC 7591), open
//! to anyone as the MCP specification expects, unless the tenant closed it.
//! Bounded three ways: the body's size, registrations per client address
//! and per tenant in a window (the sign-in throttle's counters), and the
//! tenant's cap on stored clients.

use std::net::SocketAddr;

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{OAuthError, error::no_store};
use crate::{
    domain::{
        oauth::clients::{
            AuthMethod,
            store::{self, ClientMetadata, CreatedClient, NotStored, RawMetadata},
        },
        people::sign_in_throttle::{self as throttle, Limits},
    },
    routes::admin::client_addr::client_address,
    state::AppState,
};

/// The largest registration body read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Registrations one client address may make per hour.
const PER_ADDRESS: Limits = Limits {
    max: 20,
    window_secs: 3600,
};
/// Registrations one tenant takes per hour, whoever asks.
const PER_TENANT: Limits = Limits {
    max: 200,
    window_secs: 3600,
};

#[utoipa::path(post, operation_id = "oauth_register", path = "/oauth/{tenant}/register", tag = "oauth",
    params(("tenant" = String, Path, description = "the issuer's tenant")),
    request_body(content = super::schema::ClientMetadataBody, content_type = "application/json",
        description = "RFC 7591 client metadata: `redirect_uris` (required), `client_name`, `client_uri`, \
                       `token_endpoint_auth_method` (`none`, `client_secret_basic` (default), `client_secret_post`), \
                       `grant_types` (`authorization_code`, `refresh_token`; default both), `response_types` (`code`)"),
    responses((status = 201, body = super::schema::RegisteredClient, description = "the client; `client_secret` only for a confidential client, shown this once"),
              (status = 400, body = super::schema::OAuthErrorBody, description = "`invalid_redirect_uri`, `invalid_client_metadata`"),
              (status = 403, body = super::schema::OAuthErrorBody, description = "`access_denied`: the tenant closed dynamic registration"),
              (status = 404, body = super::schema::OAuthErrorBody, description = "no such tenant"),
              (status = 413, body = super::schema::OAuthErrorBody, description = "a body over 16 KiB"),
              (status = 429, body = super::schema::OAuthErrorBody, description = "too many registrations lately, or the tenant's cap on clients reached")))]
pub async fn register(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let tenant = super::issuer_tenant(&state, &slug).await?;
    let body = body.map_err(|_| OAuthError::too_large(MAX_BODY_BYTES))?;
    let metadata = parse(&headers, &body)?;
    if !tenant.registration_open() {
        return Err(OAuthError::registration_closed());
    }
    let now = state.now();
    let address = client_address(peer.ip(), &headers, &state.config.trusted_proxies);
    let subjects = [
        (
            format!("oauth-register:{}", throttle::address_subject(address)),
            PER_ADDRESS,
        ),
        (format!("oauth-register:tenant:{}", tenant.id), PER_TENANT),
    ];
    // Counted before anything is stored, each in one atomic statement.
    for (subject, limits) in &subjects {
        if !throttle::record_attempt(state.pool(), subject, *limits, now).await? {
            return Err(OAuthError::too_many_registrations(
                "too many client registrations lately; retry later",
            ));
        }
    }
    let max = state.config.max_oauth_clients_per_tenant;
    let created = store::create(
        state.pool(),
        &state.peppers,
        &tenant.id,
        metadata,
        None,
        max,
        now,
    )
    .await?
    .map_err(|refused| match refused {
        NotStored::RegistrationClosed => OAuthError::registration_closed(),
        NotStored::TenantFull(cap) => OAuthError::too_many_registrations(format!(
            "this tenant already holds {cap} OAuth clients (KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT)"
        )),
    })?;
    Ok((StatusCode::CREATED, no_store(), Json(answer(&created))).into_response())
}

/// The metadata, from a JSON object (other media types refused: a form post
/// from a browser page cannot register a client).
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(OAuthError::invalid_request(
            "send the client metadata as Content-Type: application/json",
        ));
    }
    let raw: RawMetadata = serde_json::from_slice(body).map_err(|err| {
        OAuthError::invalid_registration(
            "invalid_client_metadata",
            format!("the body is not a JSON client metadata object: {err}"),
        )
    })?;
    ClientMetadata::parse(raw)
        .map_err(|err| OAuthError::invalid_registration(err.code, err.message))
}

/// RFC 7591 §3.2.1: the client information, and the secret this once.
pub fn answer(created: &CreatedClient) -> serde_json::Value {
    let client = &created.client;
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at.to_datetime().unix_timestamp(),
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": client.token_endpoint_auth_method.as_str(),
    });
    if let Some(uri) = &client.client_uri {
        body["client_uri"] = json!(uri);
    }
    if let Some(secret) = &created.secret {
        debug_assert!(client.token_endpoint_auth_method != AuthMethod::None);
        body["client_secret"] = json!(secret.expose());
        // 0: the secret does not expire (it ends with the client).
        body["client_secret_expires_at"] = json!(0);
    }
    body
}
