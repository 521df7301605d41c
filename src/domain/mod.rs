//! Business rules. Routes and the CLI call these; these call the database.

pub mod accounts;
pub mod actor;
pub mod anomalies;
pub mod audit;
pub mod audit_rollups;
pub mod caps;
pub mod durations;
pub mod form_tokens;
pub mod hashing;
pub mod idempotency;
mod ids;
pub mod invitations;
pub mod keys;
pub mod leaks;
pub mod notice;
pub mod outbox;
pub mod page;
pub mod queue;
pub mod random;
pub mod reminders;
pub mod sealed;
pub mod service_users;
pub mod setup;
pub mod sign_in_throttle;
pub mod tenants;
pub mod totp;
mod types;
pub mod unix_time;
pub mod usage;
pub mod users;
pub mod webhooks;

pub use actor::Actor;
pub use ids::{AdminId, KeyId, ServiceUserId, TenantId, WebhookEndpointId};
pub use types::{Description, Email, Name, Scope, TenantSlug};
pub use unix_time::UnixTime;

/// Hex SHA-256 of a high-entropy secret (a form token, a session id): what
/// the database keeps instead of the secret. No salt or stretching needed:
/// the input is random, not chosen by a person.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}
