//! Business rules. Routes and the CLI call these; these call the database.

pub mod audit;
pub mod crypto;
pub mod events;
pub mod keys;
pub mod oauth;
pub mod people;
pub mod tenancy;
pub mod values;

// The values every layer passes, named from the root: they are everywhere.
pub use values::{
    Actor, AdminId, Description, Email, KeyId, Name, Scope, ServiceUserId, TenantId, TenantSlug,
    UnixTime, WebhookEndpointId,
};
