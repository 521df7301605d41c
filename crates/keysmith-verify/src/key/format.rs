//! The API key format.
//!
//! `<prefix>_<key id>_<secret><checksum>`, e.g. `ks_4f9QzA1bC2dE3fG4_<22 secret chars><6 checksum chars>`.
//!
//! **Never change this format in place.** Keys already handed out must keep
//! parsing; a new format needs a new prefix shape and a parser that accepts both.
//!
//! - prefix: 2–16 lower-case letters and digits, starting with a letter, no `_`;
//! - key id: 16 base62 characters, public, the database lookup key;
//! - secret: 22 base62 characters from the OS CSPRNG (62^22 ≈ 2^131 > 2^128);
//! - checksum: CRC32 of everything before it, 6 base62 characters, so typos
//!   and garbage are rejected without touching the database and leaked keys
//!   are recognisable by secret scanners.

use std::fmt;

use crate::key::base62::{self, CHECKSUM_LEN};

pub const KEY_ID_LEN: usize = 16;
pub const SECRET_LEN: usize = 22;
/// Upper bound of a well-formed key, so callers can refuse long input cheaply.
pub const MAX_KEY_LEN: usize = KeyPrefix::MAX_LEN + 2 + KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN;

/// Why a string is not a well-formed key. Deliberately coarse: a caller learns
/// nothing about which part of a guessed key was close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed API key")]
pub struct MalformedKey;

/// A tenant's key prefix, e.g. `ks`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct KeyPrefix(String);

/// Why a prefix was refused; the message is shown to admins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key prefix is 2 to 16 lower-case letters or digits and starts with a letter")]
pub struct InvalidPrefix;

impl KeyPrefix {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 16;

    pub fn parse(raw: &str) -> Result<Self, InvalidPrefix> {
        let bytes = raw.as_bytes();
        let valid = (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidPrefix)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        Self("ks".to_owned())
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full plaintext API key. It exists in memory only: on creation (to be
/// shown once) and while a presented key is verified. `Debug` and `Display`
/// never print it; [`ApiKey::expose`] is the one, greppable, way out.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    full: String,
    /// Byte offsets into `full`: where the key id starts and where the secret starts.
    id_start: usize,
    secret_start: usize,
}

impl ApiKey {
    /// Mints a new key with a fresh random id and secret.
    pub fn generate(prefix: &KeyPrefix) -> Self {
        let mut full = String::with_capacity(MAX_KEY_LEN);
        full.push_str(prefix.as_str());
        full.push('_');
        push_id_secret_checksum(&mut full);
        Self::parse(&full).expect("a freshly generated key parses")
    }

    /// Parses and checksums a presented key. Pure computation, no I/O: garbage
    /// never reaches the database.
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        if raw.len() > MAX_KEY_LEN || !raw.is_ascii() {
            return Err(MalformedKey);
        }
        let (rest, tail) = raw.rsplit_once('_').ok_or(MalformedKey)?;
        let (prefix, key_id) = rest.rsplit_once('_').ok_or(MalformedKey)?;
        KeyPrefix::parse(prefix).map_err(|_| MalformedKey)?;
        check_id_secret_checksum(raw, key_id, tail)?;
        Ok(Self {
            full: raw.to_owned(),
            id_start: prefix.len() + 1,
            secret_start: prefix.len() + 1 + KEY_ID_LEN + 1,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.full[..self.id_start - 1]
    }

    /// The public key id: safe to log, store and show.
    pub fn key_id(&self) -> &str {
        &self.full[self.id_start..self.id_start + KEY_ID_LEN]
    }

    /// The secret part, the input of the stored HMAC.
    pub fn secret(&self) -> &[u8] {
        &self.full.as_bytes()[self.secret_start..self.secret_start + SECRET_LEN]
    }

    /// The last four characters, stored and shown so people can tell keys apart.
    pub fn hint(&self) -> &str {
        &self.full[self.full.len() - 4..]
    }

    /// The plaintext, for the one response that shows it to its owner.
    pub fn expose(&self) -> &str {
        &self.full
    }
}

/// Appends `<id>_<secret><checksum>` to `full` (which ends in `_`): a fresh
/// random id and secret, and the checksum of everything before it.
pub(crate) fn push_id_secret_checksum(full: &mut String) {
    let mut secret = [0u8; SECRET_LEN];
    base62::fill_random(&mut secret).expect("the OS random number generator failed");
    full.push_str(&base62::random_id(KEY_ID_LEN));
    full.push('_');
    full.push_str(std::str::from_utf8(&secret).expect("base62 is ASCII"));
    let checksum = base62::encode_checksum(crc32fast::hash(full.as_bytes()));
    full.push_str(std::str::from_utf8(&checksum).expect("base62 is ASCII"));
}

/// Checks the id and `<secret><checksum>` parts of `raw` and its checksum.
pub(crate) fn check_id_secret_checksum(
    raw: &str,
    id: &str,
    tail: &str,
) -> Result<(), MalformedKey> {
    if id.len() != KEY_ID_LEN
        || tail.len() != SECRET_LEN + CHECKSUM_LEN
        || !base62::is_base62(id.as_bytes())
        || !base62::is_base62(tail.as_bytes())
    {
        return Err(MalformedKey);
    }
    let body_len = raw.len() - CHECKSUM_LEN;
    let expected = base62::encode_checksum(crc32fast::hash(&raw.as_bytes()[..body_len]));
    // The checksum is not a secret (anyone can compute it), so a plain
    // comparison is fine here; the secret itself is compared in constant time.
    if expected != raw.as_bytes()[body_len..] {
        return Err(MalformedKey);
    }
    Ok(())
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}_{}_[redacted])", self.prefix(), self.key_id())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prefix() -> KeyPrefix {
        KeyPrefix::parse("ks").expect("valid prefix")
    }

    #[test]
    fn generated_key_has_documented_shape() {
        let key = ApiKey::generate(&prefix());
        let raw = key.expose();
        assert!(raw.starts_with("ks_"));
        assert_eq!(
            raw.len(),
            2 + 1 + KEY_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
        );
        assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_eq!(key.key_id().len(), KEY_ID_LEN);
        assert_eq!(key.secret().len(), SECRET_LEN);
        assert!(raw.ends_with(key.hint()));
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let key = ApiKey::generate(&prefix());
        let secret = std::str::from_utf8(key.secret()).expect("ascii");
        for shown in [
            format!("{key:?}"),
            format!("{key}"),
            format!("{:?}", Some(&key)),
        ] {
            assert!(!shown.contains(secret), "{shown} leaks the secret");
            assert!(shown.contains(key.key_id()));
        }
    }

    #[test]
    fn rejects_garbage() {
        for raw in [
            "",
            "ks",
            "ks__",
            "Bearer ks_x",
            "ks_0123456789abcdef_",
            "KS_0123456789abcdef_0123456789012345678901234567",
            &"a".repeat(MAX_KEY_LEN + 1),
            "ks_0123456789abcdé_0123456789012345678901234567",
        ] {
            assert_eq!(ApiKey::parse(raw), Err(MalformedKey), "{raw:?}");
        }
    }

    #[test]
    fn prefixes_are_validated() {
        assert!(KeyPrefix::parse("ks").is_ok());
        assert!(KeyPrefix::parse("acme2").is_ok());
        for bad in ["", "k", "Ks", "2ks", "k_s", "k-s", "abcdefghijklmnopq"] {
            assert_eq!(KeyPrefix::parse(bad), Err(InvalidPrefix), "{bad:?}");
        }
    }

    fn any_prefix() -> impl Strategy<Value = KeyPrefix> {
        "[a-z][a-z0-9]{1,15}".prop_map(|p| KeyPrefix::parse(&p).expect("strategy matches rule"))
    }

    proptest! {
        #[test]
        fn generate_then_parse_round_trips(prefix in any_prefix()) {
            let key = ApiKey::generate(&prefix);
            let parsed = ApiKey::parse(key.expose()).expect("round trip");
            prop_assert_eq!(parsed.prefix(), prefix.as_str());
            prop_assert_eq!(parsed.key_id(), key.key_id());
            prop_assert_eq!(parsed.secret(), key.secret());
        }

        #[test]
        fn any_single_character_change_is_rejected(
            prefix in any_prefix(),
            position in any::<prop::sample::Index>(),
            replacement in "[A-Za-z0-9_]",
        ) {
            let key = ApiKey::generate(&prefix);
            let mut bytes = key.expose().as_bytes().to_vec();
            let at = position.index(bytes.len());
            let new = replacement.as_bytes()[0];
            prop_assume!(bytes[at] != new);
            bytes[at] = new;
            let mutated = String::from_utf8(bytes).expect("ascii");
            prop_assert_eq!(ApiKey::parse(&mutated), Err(MalformedKey));
        }

        #[test]
        fn parse_never_panics(raw in "\\PC{0,80}") {
            let _ = ApiKey::parse(&raw);
        }
    }
}
