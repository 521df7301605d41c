//! What an email says, stored as the outbox payload. Only what rendering
//! needs: names, public ids, hints and dates — never a key or its hash.

use crate::domain::{KeyId, UnixTime, unix_time};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    Rotation(RotationNotice),
    ExpiryReminder(ExpiryReminder),
    Revocation(RevocationNotice),
    Anomaly(AnomalyNotice),
    WebhookDisabled(WebhookDisabledNotice),
    OAuthConnected(OAuthConnectedNotice),
}

/// An OAuth client (an MCP connector) connected to act as a service user:
/// told to the service user's owner, who may not be the person who approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthConnectedNotice {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub service_user: String,
    pub client_name: String,
    /// Where the client comes from, as the consent page showed it.
    pub client_origin: String,
    /// The MCP server its tokens are for.
    pub resource: String,
    pub scopes: String,
    pub approved_by: String,
    #[serde(with = "unix_time::as_secs")]
    pub approved_at: UnixTime,
}

/// A webhook endpoint disabled after failing too many times in a row: told
/// to the tenant's owners, who enable it again once the receiver is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDisabledNotice {
    pub tenant_name: String,
    pub webhook_id: String,
    pub url: String,
    pub failures: i64,
    pub last_error: String,
    #[serde(with = "unix_time::as_secs")]
    pub disabled_at: UnixTime,
}

/// A key calling far more than it usually does in an hour: a runaway or
/// hijacked agent, most likely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyNotice {
    pub tenant_name: String,
    pub service_user: String,
    pub key_name: String,
    pub key_id: KeyId,
    pub hint: String,
    /// The hour (Unix seconds of its start) with the unusual calls.
    #[serde(with = "unix_time::as_secs")]
    pub hour_start: UnixTime,
    pub calls: i64,
    /// The 95th percentile of its hourly calls over the 7 days before.
    pub usual_p95: i64,
    /// The most called tools in that hour, with their calls.
    pub top_tools: Vec<(String, i64)>,
}

/// A key revoked by someone other than its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationNotice {
    pub tenant_name: String,
    pub service_user: String,
    pub key_name: String,
    pub key_id: KeyId,
    pub hint: String,
    #[serde(with = "unix_time::as_secs")]
    pub revoked_at: UnixTime,
    pub revoked_by: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationNotice {
    pub tenant_name: String,
    pub service_user: String,
    pub key_name: String,
    pub old_key_id: KeyId,
    pub old_hint: String,
    pub new_key_id: KeyId,
    pub new_hint: String,
    /// When the old key stops working (Unix seconds).
    #[serde(with = "unix_time::as_secs")]
    pub cutoff_at: UnixTime,
    pub rotated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryReminder {
    pub tenant_name: String,
    pub service_user: String,
    pub key_name: String,
    pub key_id: KeyId,
    pub hint: String,
    #[serde(with = "unix_time::as_secs")]
    pub expires_at: UnixTime,
    pub threshold_days: i64,
}

impl Notice {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rotation(_) => "rotation",
            Self::ExpiryReminder(_) => "expiry_reminder",
            Self::Revocation(_) => "revocation",
            Self::Anomaly(_) => "anomaly",
            Self::WebhookDisabled(_) => "webhook_disabled",
            Self::OAuthConnected(_) => "oauth_connected",
        }
    }
}
