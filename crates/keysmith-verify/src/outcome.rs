//! What a verification concludes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{allowlist::Capabilities, limit::KeyLimits};

/// Why a key was refused, or `Valid`. These are the `code` values of
/// `POST /api/v1/verify`; renaming one breaks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyCode {
    Valid,
    Malformed,
    NotFound,
    Expired,
    Revoked,
    Disabled,
    ToolNotAllowed,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a request of a resource (`resources/read`, `…/subscribe`,
    /// `…/unsubscribe`, a completion of one) outside the key's allowlist.
    ResourceNotAllowed,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a `prompts/get` (or a completion) of a prompt outside the key's allowlist.
    PromptNotAllowed,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a call over the key's rate limit.
    RateLimited,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a call over the key's quota.
    QuotaExhausted,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a call refused because the limiter's store was unreachable.
    LimitsUnavailable,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a request naming an MCP session of another key, or one never issued.
    SessionNotFound,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a request it cannot read the way every upstream would (not one
    /// unambiguous JSON-RPC message, a foreign Content-Type or encoding, two
    /// `Mcp-Session-Id` headers).
    BadRequest,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a body over its size cap.
    TooLarge,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// an `Mcp-Method` / `Mcp-Name` / `Mcp-Param-*` header the body does not
    /// bear out.
    HeaderMismatch,
    /// Never answered by `POST /api/v1/verify`: the layer's audit reason for
    /// a request refused because MCP session bindings could not be read.
    SessionsUnavailable,
    /// Never answered by `POST /api/v1/verify`: the gateway's audit reason
    /// for a browser request of a foreign `Origin`.
    OriginNotAllowed,
}

impl VerifyCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Malformed => "malformed",
            Self::NotFound => "not_found",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Disabled => "disabled",
            Self::ToolNotAllowed => "tool_not_allowed",
            Self::ResourceNotAllowed => "resource_not_allowed",
            Self::PromptNotAllowed => "prompt_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::LimitsUnavailable => "limits_unavailable",
            Self::SessionNotFound => "session_not_found",
            Self::BadRequest => "bad_request",
            Self::TooLarge => "too_large",
            Self::HeaderMismatch => "header_mismatch",
            Self::SessionsUnavailable => "sessions_unavailable",
            Self::OriginNotAllowed => "origin_not_allowed",
        }
    }
}

/// The identity behind a verified key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub key_id: String,
    pub tenant_id: String,
    pub tenant_slug: String,
    pub service_user_id: String,
    pub service_user_name: String,
    /// When the key stops working: its expiry, or its rotation cutoff if earlier.
    pub valid_until: OffsetDateTime,
    pub scopes: Vec<String>,
    /// The tools, resources and prompts it may use.
    pub allowed: Capabilities,
    /// The key's rate limit and quota, enforced by the layer (default: none).
    pub limits: KeyLimits,
    /// Set when what was presented is an OAuth access token of this key
    /// (`allowed_tools` is then already narrowed to its scopes, `scopes` empty).
    pub token: Option<TokenGrant>,
}

/// What an access token adds to its key's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The public token id.
    pub token_id: String,
    /// The one resource (RFC 8707 audience) the token is good for.
    pub resource: String,
    /// The scopes it was granted, space-separated (RFC 6749 §3.3).
    pub scope: String,
    /// The authorization-code grant it was issued under; `None` for client
    /// credentials.
    pub grant_id: Option<String>,
    /// The OAuth client it was issued to (`client_id` at the token
    /// endpoint: a registered client's id, a client ID metadata document's
    /// URL, or for client credentials the key's id). `None` only from an
    /// older remote server.
    pub client_id: Option<String>,
}

impl VerifiedKey {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A refusal, with the key id when the key parsed (so refusals can be audited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: VerifyCode,
    pub key_id: Option<String>,
    /// Set when the key itself was genuine (hash matched) but is not usable:
    /// refusals worth auditing against the key's tenant.
    pub known: Option<Box<VerifiedKey>>,
}
