//! The OpenAPI description of the OAuth endpoints: their form bodies and
//! answers (the handlers read forms by hand, RFC 6749 §3.2 rules).

use serde::Serialize;

/// `POST {issuer}/token`, `application/x-www-form-urlencoded`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `client_credentials`, `authorization_code` or `refresh_token`.
    pub grant_type: String,
    /// RFC 8707: the MCP server's URL the token is bound to (https, or http to loopback).
    /// Required for client credentials; for the other grants, when given, it
    /// must be the authorization request's.
    pub resource: Option<String>,
    /// `authorization_code`: the code from the authorization response (single-use, 60 s).
    pub code: Option<String>,
    /// `authorization_code`: the authorization request's `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier of the request's S256 challenge.
    pub code_verifier: Option<String>,
    /// `refresh_token`: the latest refresh token (each is spent on use; a
    /// spent one presented again revokes the whole grant).
    pub refresh_token: Option<String>,
    /// Space-separated `tools:<pattern>`, `resources:<pattern>`, `prompts:<pattern>`,
    /// within the key's allowlists; absent: the key's whole reach.
    pub scope: Option<String>,
    /// The key's id (client credentials) or the OAuth client's id (a public
    /// client sends it alone; or send id and secret as `Authorization: Basic`).
    pub client_id: Option<String>,
    /// `client_secret_post`: the key, or a confidential client's secret.
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    /// `<prefix>_at_<token id>_<secret><checksum>`, shown this once.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until it expires (the tenant's policy, 10 minutes by
    /// default, never past the key's or grant's own end).
    pub expires_in: i64,
    pub scope: String,
    /// `authorization_code` and `refresh_token` grants: the next refresh
    /// token (`<prefix>_rt_…`), shown this once.
    pub refresh_token: Option<String>,
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
    /// The client the token was issued to: its `client_id` at the token
    /// endpoint (for client credentials, the key's id).
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

/// Client metadata as sent (RFC 7591 §2, the fields Keysmith reads; the
/// others are ignored, as §2 allows).
// `POST {issuer}/register` reads its body as the domain's `RawMetadata`,
// the format the domain also reads client ID metadata documents in: this
// type only describes it, under the same name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RawMetadata)]
pub struct ClientMetadataBody {
    pub redirect_uris: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
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
