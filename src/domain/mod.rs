//! Business rules and every query. Routes, the CLI and the jobs call these;
//! these call the database. One room per thing a newcomer looks for: `keys`,
//! `tenancy` (tenants, service users), `people` (admin accounts), `events`
//! (what leaves the server), `audit` (what happened, and how much), `oauth`;
//! and the rooms everything leans on: `values` (typed values) and `crypto`.

pub mod audit;
pub mod crypto;
pub mod error;
pub mod events;

pub use error::{DomainError, DomainResult};
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
