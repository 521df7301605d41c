//! Keysmith verification: the key format shared with the server, peppered
//! hashing, and verification against the Keysmith database.

pub mod allowlist;
pub mod audit;
pub mod backend;
mod base62;
pub mod cache;
pub mod clock;
mod identity;
#[cfg(feature = "sql")]
pub mod invalidation;
pub mod key;
pub mod key_state;
pub mod layer;
pub mod limit;
pub mod outcome;
pub mod pepper;
#[cfg(feature = "remote")]
pub mod remote;
pub mod resource;
pub mod scope;
pub mod session;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "sql")]
mod sql_token;
#[cfg(feature = "sql")]
mod sqlite;
pub mod telemetry;
#[cfg(any(feature = "sql", feature = "remote", test))]
mod timestamp;
#[cfg(feature = "remote")]
pub mod tls;
pub mod token;
pub mod tools;

pub use allowlist::{Capabilities, PromptAllowlist, ResourceAllowlist, ToolAllowlist, UriPattern};
pub use backend::{BackendError, Verifier};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use key::{ApiKey, KeyPrefix, MalformedKey};
pub use key_state::KeyState;
pub use layer::{TenantScope, VerifyLayer, VerifyLayerBuilder};
pub use limit::{InMemoryLimiter, KeyLimits, Limiter};
pub use outcome::{Refusal, TokenGrant, VerifiedKey, VerifyCode};
pub use pepper::Peppers;
#[cfg(feature = "remote")]
pub use remote::RemoteVerifier;
pub use resource::ProtectedResource;
#[cfg(feature = "sql")]
pub use sql::SqlVerifier;
pub use token::{Credential, OAuthToken, TokenKind};
pub use tools::ToolPattern;
