//! Where verdicts come from: the Keysmith database ([`sql`], read directly
//! on SQLite through [`sqlite`]'s readers, tokens through `sql_token`), or a
//! Keysmith server ([`remote`]); in front of either, the layer's [`cache`],
//! emptied by [`invalidation`] when the server revokes a key.

use std::{future::Future, pin::Pin, sync::Arc};

use crate::outcome::{Refusal, VerifiedKey};

pub mod cache;
#[cfg(feature = "sql")]
pub mod invalidation;
mod presented;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "sql")]
mod sql_token;
#[cfg(feature = "sql")]
pub(crate) mod sqlite;

/// The verifier backend failed (database or server unreachable…): callers must fail closed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[cfg(feature = "sql")]
    #[error("key verification is unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// A direct SQLite read failed (see [`sqlite`]).
    #[cfg(feature = "sql")]
    #[error("key verification is unavailable: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("key verification is unavailable: {0}")]
    Remote(String),
}

pub type Verdict = Result<VerifiedKey, Refusal>;
pub type VerdictFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Verdict, BackendError>> + Send + 'a>>;

/// A source of verdicts. Tool checks happen in the layer, against the
/// identity's allowlist, so verdicts can be cached per key.
pub trait Verifier: Send + Sync + std::fmt::Debug + 'static {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a>;
}

impl<V: Verifier + ?Sized> Verifier for Arc<V> {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        (**self).verify(presented)
    }
}
