//! Values every layer passes: row ids as types, parsed input (names, slugs,
//! emails, scopes), moments in whole Unix seconds, who acted, and a page of rows.

pub mod actor;
pub mod ids;
pub mod page;
pub mod types;
pub mod unix_time;

pub use actor::Actor;
pub use ids::{AdminId, KeyId, ServiceUserId, TenantId, WebhookEndpointId};
pub use types::{Description, Email, Name, Scope, TenantSlug};
pub use unix_time::UnixTime;
