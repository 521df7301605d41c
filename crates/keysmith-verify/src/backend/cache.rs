//! A short-lived in-memory cache of verdicts.
//!
//! Indexed by the presented key itself, found through a keyed hash and
//! confirmed byte for byte in constant time ([`super::presented`] says why
//! that is as safe as the SHA-256 digest it replaced, and cheaper). A verified
//! key is kept for the TTL but never past its own `valid_until`; a refused
//! one (unknown, revoked, expired…) for the shorter negative TTL, so a client
//! repeating a bad key does not reach the database on every request.
//! Eviction is per entry (S3-FIFO, `quick_cache`), so a flood of new keys
//! pushes out cold entries rather than emptying the cache. Revocation through
//! the server reaches a cache at once on the same instance (and over
//! PostgreSQL `NOTIFY` on others) through [`CachedVerifier::invalidate_key`];
//! otherwise it takes at most the TTL.

use std::{sync::Arc, time::Duration};

use quick_cache::sync::Cache;
use time::OffsetDateTime;

use super::{
    BackendError, Verdict, VerdictFuture, Verifier,
    presented::{Presented, PresentedKey},
};
use crate::{clock::SharedClock, identity::Identity, outcome::Refusal};

/// A verdict as the layer takes it: the identity shared, not copied.
pub(crate) type SharedVerdict = Result<Arc<Identity>, Refusal>;

/// Entries kept at most.
const CAPACITY: usize = 100_000;

/// A verdict and when it lapses.
#[derive(Debug, Clone)]
struct Entry {
    verdict: SharedVerdict,
    until: OffsetDateTime,
}

impl Entry {
    fn key_id(&self) -> Option<&str> {
        match &self.verdict {
            Ok(identity) => Some(&identity.key.key_id),
            Err(refusal) => refusal.key_id.as_deref(),
        }
    }
}

#[derive(Debug)]
pub struct CachedVerifier<V> {
    inner: V,
    ttl: Duration,
    negative_ttl: Duration,
    clock: SharedClock,
    entries: Cache<PresentedKey, Entry>,
}

impl<V: Verifier> CachedVerifier<V> {
    /// A TTL of zero disables caching (of refusals too).
    pub fn new(inner: V, ttl: Duration, clock: SharedClock) -> Self {
        Self {
            inner,
            ttl,
            negative_ttl: Duration::ZERO,
            clock,
            entries: Cache::new(CAPACITY),
        }
    }

    /// How long a refusal is remembered (zero: not at all).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Drops every cached verdict about `key_id` (after a revoke or rotation).
    pub fn invalidate_key(&self, key_id: &str) {
        self.entries
            .retain(|_, entry| entry.key_id() != Some(key_id));
    }

    pub fn invalidate_all(&self) {
        self.entries.clear();
    }

    /// The verdict on `presented`: from memory when fresh, else from the
    /// backend (and remembered).
    pub(crate) async fn identify(&self, presented: &str) -> Result<SharedVerdict, BackendError> {
        let shared = |verdict: Verdict| verdict.map(|key| Arc::new(Identity::new(key)));
        if self.ttl.is_zero() {
            return Ok(shared(self.inner.verify(presented).await?));
        }
        let index = Presented(presented.as_bytes());
        let now = self.clock.now();
        if let Some(hit) = self.lookup(index, now) {
            return Ok(hit);
        }
        let verdict = shared(self.inner.verify(presented).await?);
        self.store(index, &verdict, now);
        Ok(verdict)
    }

    fn lookup(&self, index: Presented<'_>, now: OffsetDateTime) -> Option<SharedVerdict> {
        let entry = self.entries.get(&index)?;
        let fresh = now < entry.until
            && entry
                .verdict
                .as_ref()
                .map_or(true, |k| now < k.key.valid_until);
        if fresh {
            Some(entry.verdict)
        } else {
            self.entries.remove(&index);
            None
        }
    }

    fn store(&self, index: Presented<'_>, verdict: &SharedVerdict, now: OffsetDateTime) {
        let lasts = |ttl: Duration| time::Duration::try_from(ttl).unwrap_or(time::Duration::ZERO);
        let until = match verdict {
            Ok(identity) => (now + lasts(self.ttl)).min(identity.key.valid_until),
            Err(_) if self.negative_ttl.is_zero() => return,
            Err(_) => now + lasts(self.negative_ttl.min(self.ttl)),
        };
        self.entries.insert(
            index.to_key(),
            Entry {
                verdict: verdict.clone(),
                until,
            },
        );
    }
}

impl<V: Verifier> Verifier for CachedVerifier<V> {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        Box::pin(async move {
            let verdict = self.identify(presented).await?;
            Ok(verdict.map(|identity| (*identity.key).clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::{
        allowlist::Capabilities,
        clock::ManualClock,
        outcome::{Refusal, VerifiedKey, VerifyCode},
        timestamp,
    };

    /// Answers `valid` for keys starting with "good", `revoked` otherwise,
    /// and counts how often it was asked.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl Verifier for Counting {
        fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let id = presented.to_owned();
            Box::pin(async move {
                Ok(if id.starts_with("good") {
                    Ok(VerifiedKey {
                        key_id: id,
                        tenant_id: "t".into(),
                        tenant_slug: "t".into(),
                        service_user_id: "s".into(),
                        service_user_name: "s".into(),
                        valid_until: timestamp::from_unix(4_000_000_000),
                        scopes: vec![],
                        allowed: Capabilities::everything(),
                        limits: Default::default(),
                        token: None,
                    })
                } else {
                    Err(Refusal {
                        code: VerifyCode::Revoked,
                        key_id: Some(id),
                        known: None,
                    })
                })
            })
        }
    }

    fn cached(clock: &ManualClock) -> CachedVerifier<Arc<Counting>> {
        CachedVerifier::new(
            Arc::new(Counting::default()),
            Duration::from_secs(5),
            Arc::new(clock.clone()),
        )
        .negative_ttl(Duration::from_secs(1))
    }

    fn asked(cache: &CachedVerifier<Arc<Counting>>) -> usize {
        cache.inner.0.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn refusals_are_remembered_briefly_and_invalidated_like_the_rest() {
        let clock = ManualClock::new(timestamp::from_unix(1_900_000_000));
        let cache = cached(&clock);
        for _ in 0..10 {
            let verdict = cache.verify("bad1").await.expect("backend");
            assert_eq!(verdict.expect_err("refused").code, VerifyCode::Revoked);
        }
        assert_eq!(
            asked(&cache),
            1,
            "a repeated bad key is answered from memory"
        );
        clock.advance(time::Duration::seconds(2));
        cache
            .verify("bad1")
            .await
            .expect("backend")
            .expect_err("refused");
        assert_eq!(asked(&cache), 2, "the negative TTL is short");
        cache.invalidate_key("bad1");
        cache
            .verify("bad1")
            .await
            .expect("backend")
            .expect_err("refused");
        assert_eq!(asked(&cache), 3, "invalidation drops refusals too");

        cache
            .verify("good1")
            .await
            .expect("backend")
            .expect("valid");
        cache
            .verify("good1")
            .await
            .expect("backend")
            .expect("valid");
        assert_eq!(asked(&cache), 4);
        cache.invalidate_key("good1");
        cache
            .verify("good1")
            .await
            .expect("backend")
            .expect("valid");
        assert_eq!(asked(&cache), 5);
    }

    #[tokio::test]
    async fn a_flood_of_new_keys_evicts_per_entry() {
        let clock = ManualClock::new(timestamp::from_unix(1_900_000_000));
        let cache = cached(&clock);
        cache
            .verify("good-hot")
            .await
            .expect("backend")
            .expect("valid");
        for i in 0..(CAPACITY + CAPACITY / 2) {
            // Keep the hot key hot while the flood passes.
            if i % 1000 == 0 {
                cache
                    .verify("good-hot")
                    .await
                    .expect("backend")
                    .expect("valid");
            }
            cache
                .verify(&format!("bad-{i}"))
                .await
                .expect("backend")
                .expect_err("refused");
        }
        assert!(
            cache.entries.len() <= CAPACITY + CAPACITY / 10,
            "bounded: {}",
            cache.entries.len()
        );
        let before = asked(&cache);
        cache
            .verify("good-hot")
            .await
            .expect("backend")
            .expect("valid");
        assert_eq!(asked(&cache), before, "the hot key survived the flood");
    }
}
