//! A short-lived in-memory cache of verified keys.
//!
//! Keyed by SHA-256 of the presented key (never the plaintext), holding only
//! successes, and never past the key's own `valid_until`. Revocation through
//! the server reaches a cache at once only on the same instance (through
//! [`CachedVerifier::invalidate_key`]); elsewhere it takes at most the TTL.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    backend::{Verdict, VerdictFuture, Verifier},
    clock::SharedClock,
    outcome::VerifiedKey,
};

/// SHA-256 of the presented key → the identity and when the entry lapses.
type Entries = HashMap<[u8; 32], (VerifiedKey, OffsetDateTime)>;

/// Entries kept at most; past it, expired ones go, then everything.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct CachedVerifier<V> {
    inner: V,
    ttl: Duration,
    clock: SharedClock,
    entries: Arc<Mutex<Entries>>,
}

impl<V: Verifier> CachedVerifier<V> {
    /// A TTL of zero disables caching.
    pub fn new(inner: V, ttl: Duration, clock: SharedClock) -> Self {
        Self {
            inner,
            ttl,
            clock,
            entries: Arc::default(),
        }
    }

    /// Drops every cached entry of `key_id` (after a revoke or rotation on this instance).
    pub fn invalidate_key(&self, key_id: &str) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|_, (key, _)| key.key_id != key_id);
    }

    pub fn invalidate_all(&self) {
        self.entries.lock().expect("cache lock").clear();
    }

    fn lookup(&self, fingerprint: &[u8; 32], now: OffsetDateTime) -> Option<VerifiedKey> {
        let entries = self.entries.lock().expect("cache lock");
        let (key, until) = entries.get(fingerprint)?;
        (now < *until && now < key.valid_until).then(|| key.clone())
    }

    fn store(&self, fingerprint: [u8; 32], key: &VerifiedKey, now: OffsetDateTime) {
        let ttl = time::Duration::try_from(self.ttl).unwrap_or(time::Duration::ZERO);
        let until = (now + ttl).min(key.valid_until);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(fingerprint, (key.clone(), until));
    }
}

impl<V: Verifier> Verifier for CachedVerifier<V> {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        Box::pin(async move {
            if self.ttl.is_zero() {
                return self.inner.verify(presented).await;
            }
            let fingerprint: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
            let now = self.clock.now();
            if let Some(hit) = self.lookup(&fingerprint, now) {
                return Ok(Ok(hit));
            }
            let verdict: Verdict = self.inner.verify(presented).await?;
            if let Ok(key) = &verdict {
                self.store(fingerprint, key, now);
            }
            Ok(verdict)
        })
    }
}
