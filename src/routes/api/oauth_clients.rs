//! `/api/v1/tenants/{tenant}/oauth/clients`: OAuth clients pre-registered
//! by an admin (confidential ones get a secret, shown once), the list of
//! every stored client (dynamically registered included) and deletion.
//! Whether clients may register themselves is tenant policy
//! (`oauth_registration_open` at `/api/v1/tenants/{tenant}`).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{auth::ManagementCaller, extract::ApiJson};
use crate::{
    domain::{
        UnixTime,
        oauth::clients::{
            AuthMethod, ClientKind,
            store::{self, ClientMetadata, NotStored, RawMetadata, StoredClient},
        },
    },
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// Shown to the person approving the client.
    pub client_name: String,
    /// https; http to 127.0.0.1, [::1] or localhost (any port at use); or a
    /// native app's private-use scheme. At most 10, no fragments.
    pub redirect_uris: Vec<String>,
    /// `none` (a public client), `client_secret_basic` (default) or `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
    /// `authorization_code` and `refresh_token` (default both).
    pub grant_types: Option<Vec<String>>,
    /// The client's home page (https).
    pub client_uri: Option<String>,
}

/// Where a client's description comes from.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[schema(as = ClientKind)]
#[serde(rename_all = "snake_case")]
pub enum ClientKindName {
    /// The client_id is an https URL serving the client's metadata.
    MetadataDocument,
    /// Registered by the client itself (RFC 7591).
    Registered,
    /// Registered by an admin of the tenant.
    PreRegistered,
}

impl From<ClientKind> for ClientKindName {
    fn from(kind: ClientKind) -> Self {
        match kind {
            ClientKind::MetadataDocument => Self::MetadataDocument,
            ClientKind::Registered => Self::Registered,
            ClientKind::PreRegistered => Self::PreRegistered,
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[schema(as = AuthMethod)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethodName {
    /// A public client: no secret, PKCE alone binds the code to it.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl From<AuthMethod> for AuthMethodName {
    fn from(method: AuthMethod) -> Self {
        match method {
            AuthMethod::None => Self::None,
            AuthMethod::ClientSecretBasic => Self::ClientSecretBasic,
            AuthMethod::ClientSecretPost => Self::ClientSecretPost,
        }
    }
}

/// A stored client as listed (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StoredClient)]
pub struct StoredClientInfo {
    pub client_id: String,
    pub kind: ClientKindName,
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: AuthMethodName,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: UnixTime,
    /// The admin who pre-registered it (`null`: registered by the client).
    pub created_by: Option<String>,
}

impl From<StoredClient> for StoredClientInfo {
    fn from(client: StoredClient) -> Self {
        Self {
            client_id: client.client_id,
            kind: client.kind.into(),
            client_name: client.client_name,
            client_uri: client.client_uri,
            redirect_uris: client.redirect_uris,
            grant_types: client.grant_types,
            token_endpoint_auth_method: client.token_endpoint_auth_method.into(),
            created_at: client.created_at,
            created_by: client.created_by,
        }
    }
}

/// The created client and, for a confidential one, its secret: shown
/// this once, never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: StoredClientInfo,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    pub items: Vec<StoredClientInfo>,
    /// Whether clients may register themselves (RFC 7591): the tenant
    /// policy's `oauth_registration_open`, repeated here.
    pub registration_open: bool,
}

#[utoipa::path(post, operation_id = "oauth_clients_create", path = "/api/v1/tenants/{tenant}/oauth/clients", tag = "oauth",
    params(("tenant" = String, Path, description = "tenant slug")),
    request_body = CreateClient,
    responses((status = 201, body = CreatedClient, description = "`client_secret` only for a confidential client, shown this once"),
        (status = 404, description = "another tenant"),
        (status = 422, description = "invalid metadata, or the tenant's cap on clients reached")),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateClient>,
) -> AppResult<(
    StatusCode,
    [(http::HeaderName, &'static str); 1],
    Json<CreatedClient>,
)> {
    let tenant = caller.tenant(&state, &tenant).await?;
    if body.client_name.trim().is_empty() {
        return Err(AppError::Validation(
            "client_name: give the name people will see".into(),
        ));
    }
    let metadata = ClientMetadata::parse(RawMetadata {
        redirect_uris: Some(body.redirect_uris),
        client_name: Some(body.client_name),
        client_uri: body.client_uri,
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        grant_types: body.grant_types,
        response_types: None,
    })
    .map_err(crate::domain::DomainError::from)?;
    let created = pre_register(&state, &tenant.id, metadata, &caller.actor()).await?;
    Ok((
        StatusCode::CREATED,
        super::NO_STORE,
        Json(CreatedClient {
            client_secret: created.secret.as_ref().map(|s| s.expose().to_owned()),
            client: created.client.into(),
        }),
    ))
}

/// Stores a client an admin described (the API's and the admin page's way).
pub async fn pre_register(
    state: &AppState,
    tenant_id: &crate::domain::TenantId,
    metadata: ClientMetadata,
    actor: &crate::domain::Actor,
) -> AppResult<store::CreatedClient> {
    let max = state.config.max_oauth_clients_per_tenant;
    store::create(
        state.pool(),
        &state.peppers,
        tenant_id,
        metadata,
        Some(actor),
        max,
        state.now(),
    )
    .await?
    .map_err(|refused| match refused {
        NotStored::TenantFull(cap) => AppError::Validation(format!(
            "a tenant has at most {cap} OAuth clients (KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT): delete one first"
        )),
        NotStored::RegistrationClosed => AppError::Internal(anyhow::anyhow!(
            "an admin's client was refused as a dynamic registration"
        )),
    })
}

#[utoipa::path(get, operation_id = "oauth_clients_list", path = "/api/v1/tenants/{tenant}/oauth/clients", tag = "oauth",
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = ClientList, description = "stored clients, newest first, never a secret; metadata-document clients are not stored"),
        (status = 404, description = "another tenant")),
    security(("management_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path(tenant): Path<String>,
) -> AppResult<Json<ClientList>> {
    let tenant = caller.tenant(&state, &tenant).await?;
    Ok(Json(ClientList {
        items: store::list(state.pool(), &tenant.id)
            .await?
            .into_iter()
            .map(StoredClientInfo::from)
            .collect(),
        registration_open: tenant.registration_open(),
    }))
}

#[utoipa::path(delete, operation_id = "oauth_clients_delete", path = "/api/v1/tenants/{tenant}/oauth/clients/{client_id}", tag = "oauth",
    params(("tenant" = String, Path, description = "tenant slug"), ("client_id" = String, Path, description = "`kc_…`")),
    responses((status = 204, description = "deleted: it can no longer start an authorization nor redeem a code or refresh token"),
        (status = 404, description = "no such client in this tenant")),
    security(("management_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: ManagementCaller,
    Path((tenant, client_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let actor = caller.actor();
    if store::delete(state.pool(), &tenant.id, &client_id, &actor, state.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("OAuth client"))
    }
}
