//! The OAuth clients a tenant's issuer knows: by a client ID metadata
//! document (the client_id is an https URL, fetched and cached), by dynamic
//! registration (RFC 7591) or pre-registered by an admin (both stored).
//! `resolve` finds one; `OAuthClient` says which redirects it may use and
//! checks a confidential client's secret; `purge` deletes registered
//! clients that were never used.

pub mod document;
pub mod metadata;
pub mod purge;
pub mod redirect;
pub mod store;

use std::{fmt, sync::Arc};

use sqlx::AnyPool;

use crate::{domain::TenantId, domain::error::DomainResult};
use keysmith_verify::Peppers;

pub use document::DocumentFetch;

/// Where a client's description comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// The client_id is an https URL serving the client's metadata.
    MetadataDocument,
    /// Registered by the client itself (RFC 7591).
    Registered,
    /// Registered by an admin of the tenant.
    PreRegistered,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MetadataDocument => "metadata_document",
            Self::Registered => "registered",
            Self::PreRegistered => "pre_registered",
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client: no secret, PKCE alone binds the code to it.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// The grants a client of the authorization-code flow may use.
pub const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// A client as the authorization and token endpoints see it.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// What the client sends as `client_id`: `kc_…` for stored clients, the
    /// document's URL for a metadata-document client.
    pub client_id: String,
    pub kind: ClientKind,
    /// The name the client gave (`client_name`), or its origin without one.
    pub name: String,
    /// The origin a person is shown on the consent page: the metadata
    /// document's (the client proved it controls it), otherwise that of the
    /// first redirect URI (where codes go).
    pub origin: String,
    /// `client_uri` as the client described itself (not verified).
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    /// `authorization_code` and/or `refresh_token`.
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    /// Hex HMAC of a confidential client's secret and its pepper version.
    secret_hash: Option<(String, i64)>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// Whether an authorization request may send the code to `redirect_uri`:
    /// one of the registered URIs exactly, or a loopback `http` one on any
    /// port (RFC 8252 §7.3).
    pub fn redirect_allowed(&self, redirect_uri: &str) -> bool {
        redirect::allowed(&self.redirect_uris, redirect_uri)
    }

    /// Whether the client must authenticate at the token endpoint.
    pub fn is_confidential(&self) -> bool {
        self.auth_method != AuthMethod::None
    }

    /// Whether the client registered for `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The client's authentication at the token endpoint: a public client
    /// presents no secret; a confidential one presents its secret (by
    /// `client_secret_basic` or `client_secret_post`, either is accepted),
    /// compared as an HMAC in constant time. `false` is `invalid_client`.
    pub fn authenticate(&self, peppers: &Peppers, presented_secret: Option<&str>) -> bool {
        match (&self.secret_hash, presented_secret) {
            (None, None) => true,
            (None, Some(_)) | (Some(_), None) => false,
            (Some((hash, version)), Some(secret)) => {
                peppers.matches(Some((hash.as_str(), *version)), secret.as_bytes())
            }
        }
    }
}

/// Why a client_id names no usable client. The message can be shown to
/// the person on the authorization page and to the client (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientRefused {
    #[error("unknown client_id")]
    Unknown,
    /// A metadata-document client whose document could not be used.
    #[error("the client ID metadata document could not be used: {0}")]
    Document(String),
}

/// A confidential client's secret, shown once at creation.
pub struct ClientSecret(String);

impl ClientSecret {
    fn generate() -> Self {
        Self(format!("kcs_{}", crate::domain::crypto::random::base62(43)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Resolves client_ids for every tenant: stored clients from the database,
/// metadata documents through a bounded cache shared by all tenants (a
/// document says the same whoever asks). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientRegistry {
    documents: Arc<document::Documents>,
}

impl ClientRegistry {
    pub fn new(fetch: DocumentFetch) -> anyhow::Result<Self> {
        Ok(Self {
            documents: Arc::new(document::Documents::new(fetch)?),
        })
    }

    /// The client `client_id` names for `tenant_id`: an https URL is a
    /// metadata document (fetched with the outbound address guard, or from
    /// the cache) if the tenant's policy accepts them; `kc_…` a stored client of this tenant (another
    /// tenant's is `Unknown`); anything else is `Unknown` (a key id is a
    /// client-credentials client, which the token endpoint handles apart).
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn resolve(
        &self,
        pool: &AnyPool,
        tenant_id: &TenantId,
        client_id: &str,
    ) -> DomainResult<Result<OAuthClient, ClientRefused>> {
        if client_id.starts_with("https://") {
            // Checked before any fetch: a tenant that refuses documents
            // never makes Keysmith fetch one on its behalf.
            if !accepts_documents(pool, tenant_id).await? {
                return Ok(Err(ClientRefused::Document(
                    "this tenant does not accept client ID metadata documents; \
                     an admin of it can pre-register the client"
                        .to_owned(),
                )));
            }
            return Ok(self.documents.resolve(client_id).await);
        }
        if client_id.starts_with("http://") {
            return Ok(Err(ClientRefused::Document(
                "a client ID metadata document must be served over https".to_owned(),
            )));
        }
        if !store::looks_like_client_id(client_id) {
            return Ok(Err(ClientRefused::Unknown));
        }
        Ok(store::find(pool, tenant_id, client_id)
            .await?
            .ok_or(ClientRefused::Unknown))
    }
}

/// The tenant policy's switch for metadata-document clients (a missing
/// tenant accepts nothing).
async fn accepts_documents(pool: &AnyPool, tenant_id: &TenantId) -> DomainResult<bool> {
    let accepted: Option<(i64,)> =
        sqlx::query_as("SELECT oauth_metadata_documents FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(pool)
            .await?;
    Ok(accepted.is_some_and(|(on,)| on != 0))
}
