//! Business rules. Routes and the CLI call these; these call the database.

pub mod actor;
pub mod audit;
pub mod keys;
pub mod notice;
pub mod outbox;
pub mod page;
pub mod reminders;
pub mod rfc3339;
pub mod service_users;
pub mod setup;
pub mod tenants;
mod types;
pub mod users;

pub use actor::Actor;
pub use types::{Description, Email, Name, Scope, TenantSlug};
