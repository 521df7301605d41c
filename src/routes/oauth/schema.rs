//! The OpenAPI description of the OAuth endpoints: their form bodies and
//! answers (the handlers read forms by hand, RFC 6749 §3.2 rules).

use serde::Serialize;

/// `POST {issuer}/token`, `application/x-www-form-urlencoded`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `client_credentials` (the authorization-code grants answer `unsupported_grant_type` until built).
    pub grant_type: String,
    /// RFC 8707: the MCP server's URL the token is bound to (https, or http to loopback).
    pub resource: String,
    /// Space-separated `tools:<pattern>`, `resources:<pattern>`, `prompts:<pattern>`,
    /// within the key's allowlists; absent: the key's whole reach.
    pub scope: Option<String>,
    /// `client_secret_post`: the key's id (or send both as `Authorization: Basic`).
    pub client_id: Option<String>,
    /// `client_secret_post`: the key.
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    /// `<prefix>_at_<token id>_<secret><checksum>`, shown this once.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until it expires (10 minutes, never past the key's own end).
    pub expires_in: i64,
    pub scope: String,
}

/// `POST {issuer}/introspect` and `POST {issuer}/revoke`, form-encoded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenParameter {
    pub token: String,
    /// Ignored (only access tokens exist).
    pub token_type_hint: Option<String>,
}

/// RFC 7662: `{"active": false}` alone, or every field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    /// The parent key's id.
    pub client_id: Option<String>,
    pub token_type: Option<String>,
    /// Unix seconds.
    pub exp: Option<i64>,
    /// The service user's id.
    pub sub: Option<String>,
    /// The service user's name.
    pub username: Option<String>,
    /// The resource the token is bound to.
    pub aud: Option<String>,
    pub iss: Option<String>,
}

/// RFC 6749 §5.2 error answer of the OAuth endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`,
    /// `temporarily_unavailable`, `server_error`, `not_found`.
    pub error: String,
    pub error_description: String,
}

/// `POST {issuer}/register` answer (RFC 7591 §3.2.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredClient {
    /// `kc_` and 22 characters.
    pub client_id: String,
    /// Unix seconds.
    pub client_id_issued_at: i64,
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// A confidential client's secret (`kcs_…`), shown this once.
    pub client_secret: Option<String>,
    /// `0`: the secret does not expire.
    pub client_secret_expires_at: Option<i64>,
}
