//! Keysmith verification: the key format shared with the server, peppered
//! hashing, and verification against the Keysmith database.

pub mod audit;
pub mod backend;
mod base62;
pub mod cache;
pub mod clock;
pub mod invalidation;
pub mod key;
pub mod layer;
pub mod outcome;
pub mod pepper;
pub mod sql;
pub mod timestamp;
pub mod tls;
pub mod tools;

pub use backend::{RemoteVerifier, Verifier};
pub use base62::random_id;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use key::{ApiKey, KeyPrefix, MalformedKey};
pub use layer::{TenantScope, VerifyLayer, VerifyLayerBuilder};
pub use outcome::{Refusal, VerifiedKey, VerifyCode};
pub use pepper::Peppers;
pub use sql::{BackendError, SqlVerifier};
pub use tools::{ToolAllowlist, ToolPattern};
