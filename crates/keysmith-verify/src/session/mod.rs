//! MCP sessions belong to the key that opened them: the layer remembers
//! which key received each `Mcp-Session-Id` an upstream issued, and lets a
//! request carrying a session id through only for that key.
//!
//! Bindings live in a [`SessionStore`]: the Keysmith database
//! ([`SqlSessions`], shared by every instance on it), Redis
//! (`RedisSessions`, feature `redis`, shared by every instance using it) or
//! this process's memory ([`InMemorySessions`], the default). [`Sessions`] keeps a bounded
//! cache in front of the store, so a session's requests after its first on
//! an instance cost a hash and a lookup in memory.
//!
//! Only SHA-256 of a session id is kept (memory and database alike): the id
//! is the session's bearer secret. Lookups go by that hash, so whatever
//! timing they show is about the hash, which does not help guess an id; the
//! owner's key id, compared in the clear, is public.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::{backend::BackendError, identity::AuditIds};

mod memory;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "sql")]
mod sql;

pub use memory::InMemorySessions;
#[cfg(feature = "redis")]
pub use redis_store::RedisSessions;
#[cfg(feature = "sql")]
pub use sql::SqlSessions;

/// Bindings the [`Sessions`] cache holds at most (and the in-memory store).
pub(crate) const CAPACITY: usize = 100_000;

/// How long a binding nobody uses is kept, by default (a client idle longer
/// gets `404` and opens a new session, as the MCP transport expects).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a binding in use tells the store it still is (at most once per
/// this interval per session and instance: not a write per request).
const REFRESH_EVERY: i64 = 10 * 60;

/// SHA-256 of a session id: what is stored and compared, never the id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHash([u8; 32]);

impl SessionHash {
    pub fn of(session_id: &[u8]) -> Self {
        Self(Sha256::digest(session_id).into())
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for SessionHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionHash(…)")
    }
}

/// The key a session was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    pub key_id: Arc<str>,
    pub tenant_id: Arc<str>,
}

impl SessionOwner {
    pub(crate) fn of(ids: &AuditIds) -> Self {
        Self {
            key_id: Arc::clone(&ids.key_id),
            tenant_id: Arc::clone(&ids.tenant_id),
        }
    }
}

/// A binding as stored: its owner and when it was last known in use (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub owner: SessionOwner,
    pub seen_at: i64,
}

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// Where bindings are kept. Every method may fail (the store is down): the
/// layer then refuses the request (`503`), never lets it through.
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Binds `session` to `owner` at `now` unless it is bound already, and
    /// forgets bindings unused since before `idle_before`. Returns the
    /// binding that holds afterwards: `owner`'s, or the one that was there
    /// (`None`: the session ended meanwhile).
    fn bind<'a>(
        &'a self,
        session: SessionHash,
        owner: &'a SessionOwner,
        now: i64,
        idle_before: i64,
    ) -> StoreFuture<'a, Option<Binding>>;

    /// The binding of `session`, unless unused since before `idle_before`.
    fn find(&self, session: SessionHash, idle_before: i64) -> StoreFuture<'_, Option<Binding>>;

    /// Records that `session` is in use at `now`.
    fn touch(&self, session: SessionHash, now: i64) -> StoreFuture<'_, ()>;

    /// Forgets `session` (it ended).
    fn end(&self, session: SessionHash) -> StoreFuture<'_, ()>;
}

/// The layer's view of the bindings: a store with a bounded cache before it.
///
/// Only bindings are cached, never "unknown": a session another instance
/// just bound must be found here on its next request. A session ended
/// through another instance stays cached here until it ages out; its id then
/// reaches only the upstream that ended it (which answers `404`), and only
/// for the key it belonged to.
#[derive(Debug)]
pub(crate) struct Sessions {
    store: Arc<dyn SessionStore>,
    idle: i64,
    cached: Cache<SessionHash, Binding>,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, idle: Duration) -> Self {
        Self {
            store,
            idle: i64::try_from(idle.as_secs()).unwrap_or(i64::MAX),
            cached: Cache::new(CAPACITY),
        }
    }

    fn idle_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.idle)
    }

    /// Who owns `session` at `now` (`None`: never issued, ended or aged out).
    pub async fn owner(
        &self,
        session: SessionHash,
        now: i64,
    ) -> Result<Option<SessionOwner>, BackendError> {
        let idle_before = self.idle_before(now);
        let (mut binding, mut changed) = match self.cached.get(&session) {
            Some(hit) if hit.seen_at >= idle_before => (hit, false),
            _ => match self.store.find(session, idle_before).await? {
                Some(found) => (found, true),
                None => {
                    self.cached.remove(&session);
                    return Ok(None);
                }
            },
        };
        if now - binding.seen_at >= REFRESH_EVERY {
            match self.store.touch(session, now).await {
                Ok(()) => {
                    binding.seen_at = now;
                    changed = true;
                }
                // Costs the binding nothing yet (most of its idle time is
                // left); the next request tries again.
                Err(err) => {
                    tracing::warn!(error = %err, "could not refresh an MCP session binding")
                }
            }
        }
        let owner = binding.owner.clone();
        if changed {
            self.cached.insert(session, binding);
        }
        Ok(Some(owner))
    }

    /// Binds a newly issued `session` to `owner`; the owner it has afterwards
    /// (another one only if the upstream issued one id twice; `None` if it
    /// ended meanwhile).
    pub async fn bind(
        &self,
        session: SessionHash,
        owner: &SessionOwner,
        now: i64,
    ) -> Result<Option<SessionOwner>, BackendError> {
        let binding = self
            .store
            .bind(session, owner, now, self.idle_before(now))
            .await?;
        Ok(binding.map(|binding| {
            let bound = binding.owner.clone();
            self.cached.insert(session, binding);
            bound
        }))
    }

    /// Forgets `session`, which its owner ended.
    pub async fn end(&self, session: SessionHash) -> Result<(), BackendError> {
        // The store first: a request between the two would cache it again.
        self.store.end(session).await?;
        self.cached.remove(&session);
        Ok(())
    }
}

#[cfg(all(test, feature = "redis"))]
mod redis_tests;
#[cfg(test)]
mod tests;
