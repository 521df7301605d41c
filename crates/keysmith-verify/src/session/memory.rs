//! Bindings in this process only: the default, and the choice for a layer
//! without the Keysmith database (the remote backend). A session opened
//! through one instance is then unknown (`404`) on every other.

use std::convert::Infallible;

use quick_cache::sync::Cache;

use super::{Binding, CAPACITY, SessionHash, SessionOwner, SessionStore, StoreFuture};

/// At most [`CAPACITY`] bindings; past that the coldest are forgotten, and
/// their clients get `404` and open a new session.
#[derive(Debug)]
pub struct InMemorySessions {
    bindings: Cache<SessionHash, Binding>,
}

impl Default for InMemorySessions {
    fn default() -> Self {
        Self {
            bindings: Cache::new(CAPACITY),
        }
    }
}

impl InMemorySessions {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SessionStore for InMemorySessions {
    fn bind<'a>(
        &'a self,
        session: SessionHash,
        owner: &'a SessionOwner,
        now: i64,
        idle_before: i64,
    ) -> StoreFuture<'a, Option<Binding>> {
        let fresh = Binding {
            owner: owner.clone(),
            seen_at: now,
        };
        // Aged-out bindings here are only forgotten lazily (or evicted).
        self.bindings
            .remove_if(&session, |held| held.seen_at < idle_before);
        // One insertion wins a race; the others read what it inserted.
        let held = self
            .bindings
            .get_or_insert_with(&session, || Ok::<_, Infallible>(fresh));
        Box::pin(async move { Ok(Some(held.unwrap_or_else(|never| match never {}))) })
    }

    fn find(&self, session: SessionHash, idle_before: i64) -> StoreFuture<'_, Option<Binding>> {
        let found = self
            .bindings
            .get(&session)
            .filter(|held| held.seen_at >= idle_before);
        Box::pin(async move { Ok(found) })
    }

    fn touch(&self, session: SessionHash, now: i64) -> StoreFuture<'_, ()> {
        if let Some(held) = self.bindings.get(&session) {
            // Never rebinds: an ended session stays ended.
            let _ = self.bindings.replace(
                session,
                Binding {
                    seen_at: now.max(held.seen_at),
                    ..held
                },
                true,
            );
        }
        Box::pin(async { Ok(()) })
    }

    fn end(&self, session: SessionHash) -> StoreFuture<'_, ()> {
        self.bindings.remove(&session);
        Box::pin(async { Ok(()) })
    }
}
