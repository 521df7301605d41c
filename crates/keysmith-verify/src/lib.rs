//! Keysmith verification: the key format shared with the server, peppered
//! hashing, and verification against the Keysmith database.
//!
//! [`key`] is what a key is (format, hashing, state, tokens); [`backend`]
//! where verdicts come from (SQL, SQLite readers, a remote server, the
//! cache); [`layer`] the tower layer that uses them on every request.

pub mod allowlist;
pub mod audit;
pub mod backend;
pub mod clock;
mod identity;
pub mod key;
pub mod layer;
pub mod limit;
pub mod outcome;
pub mod resource;
pub mod scope;
pub mod session;
pub mod telemetry;
#[cfg(any(feature = "sql", feature = "remote", test))]
mod timestamp;
#[cfg(feature = "remote")]
pub mod tls;
pub mod tools;

pub use allowlist::{Capabilities, PromptAllowlist, ResourceAllowlist, ToolAllowlist, UriPattern};
#[cfg(feature = "remote")]
pub use backend::remote::RemoteVerifier;
#[cfg(feature = "sql")]
pub use backend::sql::SqlVerifier;
pub use backend::{BackendError, Verifier};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use key::pepper::Peppers;
pub use key::state::KeyState;
pub use key::token::{Credential, OAuthToken, TokenKind};
pub use key::{ApiKey, KeyPrefix, MalformedKey};
pub use layer::{TenantScope, VerifyLayer, VerifyLayerBuilder};
pub use limit::{InMemoryLimiter, KeyLimits, Limiter};
pub use outcome::{Refusal, TokenGrant, VerifiedKey, VerifyCode};
pub use resource::ProtectedResource;
pub use tools::ToolPattern;
