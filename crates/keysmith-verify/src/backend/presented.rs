//! The verdict cache's index: the presented key itself, found through the
//! cache's keyed hash and confirmed by a constant-time comparison of every
//! byte.
//!
//! Why not a digest of the key (SHA-256 before): in this path the digest was
//! an index and nothing more, at 3.4k instructions a call (in software, as
//! valgrind counts it), the largest single cost of a warm-cache key. What a
//! cache of verdicts must guarantee is that a presented key never gets
//! another key's verdict. Here the index only finds a candidate: the
//! cache's hasher (`RandomState`, SipHash keyed at random per process)
//! picks the slot, then [`Equivalent`] compares the whole presented bytes
//! against the entry's, so two keys that share a hash are two entries, or a
//! miss, never one verdict for both. A collision costs at most a backend
//! read. The comparison is constant-time (`subtle`), word by word, so its
//! timing says nothing about how much of a candidate matched; the hash's
//! own timing depends on a per-process random key an attacker never sees.
//!
//! What this trades: the cache holds presented keys (up to its capacity,
//! each for at most its TTL) where it held their digests. A process that
//! verifies keys holds each one in memory while verifying it anyway; the
//! bytes are wiped when their entry goes (`zeroize`) and never printed.

use std::hash::{Hash, Hasher};

use quick_cache::Equivalent;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

/// A presented key kept as a cache index (see the module's comment).
/// `Debug` prints no byte of it.
#[derive(Clone)]
pub(crate) struct PresentedKey(Zeroizing<Box<[u8]>>);

/// A presented key being looked up, borrowed from the request.
#[derive(Clone, Copy)]
pub(crate) struct Presented<'a>(pub(crate) &'a [u8]);

impl Presented<'_> {
    /// The owned index for a new entry (one copy, at a cache miss).
    pub(crate) fn to_key(self) -> PresentedKey {
        PresentedKey(Zeroizing::new(self.0.into()))
    }
}

// The owned and borrowed forms hash alike: the bytes, as a slice.
impl Hash for PresentedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_ref().hash(state);
    }
}

impl Hash for Presented<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Equivalent<PresentedKey> for Presented<'_> {
    fn equivalent(&self, key: &PresentedKey) -> bool {
        same_bytes(self.0, &key.0).into()
    }
}

impl PartialEq for PresentedKey {
    fn eq(&self, other: &Self) -> bool {
        same_bytes(&self.0, &other.0).into()
    }
}

impl Eq for PresentedKey {}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentedKey(…)")
    }
}

/// Whether `a` and `b` are the same bytes, in time that depends on their
/// lengths only (a key's length is its public format). Eight bytes at a
/// time: `subtle`'s byte-wise slice comparison costs about ten times as
/// many instructions for the same guarantee.
fn same_bytes(a: &[u8], b: &[u8]) -> Choice {
    if a.len() != b.len() {
        return Choice::from(0);
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a_words.remainder().ct_eq(b_words.remainder());
    let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
    a_words
        .zip(b_words)
        .fold(tail, |same, (a, b)| same & word(a).ct_eq(&word(b)))
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn equal_bytes_and_only_equal_bytes_are_the_same_key() {
        let key = "ks_live_0123456789abcdef0123456789abcdef0123456789";
        let owned = Presented(key.as_bytes()).to_key();
        assert!(Presented(key.as_bytes()).equivalent(&owned));
        // A difference in any position, in the words or the tail, and any
        // other length, is another key.
        for at in 0..key.len() {
            let mut other = key.as_bytes().to_vec();
            other[at] ^= 1;
            assert!(!Presented(&other).equivalent(&owned), "differs at {at}");
        }
        assert!(!Presented(&key.as_bytes()[..key.len() - 1]).equivalent(&owned));
        let longer = format!("{key}x");
        assert!(!Presented(longer.as_bytes()).equivalent(&owned));
        assert!(!Presented(b"").equivalent(&owned));
        assert!(Presented(b"").equivalent(&Presented(b"").to_key()));
    }

    #[test]
    fn the_owned_and_borrowed_forms_hash_alike() {
        let hasher = RandomState::new();
        let key = b"ks_live_abc";
        assert_eq!(
            hasher.hash_one(Presented(key)),
            hasher.hash_one(Presented(key).to_key())
        );
    }

    #[test]
    fn no_byte_of_the_key_is_printed() {
        let owned = Presented(b"ks_live_secret").to_key();
        assert_eq!(format!("{owned:?}"), "PresentedKey(…)");
    }
}
