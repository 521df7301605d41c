//! The pepper: the server-side HMAC key that turns a key's secret into the
//! digest stored in the database. It lives in a file or config, never in the
//! database, so a stolen database alone cannot be used to test guesses.
//!
//! Several versions can be loaded at once: new keys use the highest, and
//! existing keys keep verifying with the version recorded next to their hash.
//! That is how a pepper is rotated without invalidating every key.

use std::{collections::BTreeMap, fmt, path::Path};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA-256 output length.
pub const DIGEST_LEN: usize = 32;
/// Minimum pepper length: a 256-bit HMAC key.
pub const MIN_PEPPER_BYTES: usize = 32;

pub type Digest = [u8; DIGEST_LEN];

/// Loaded peppers by version. `Debug` never prints their bytes.
#[derive(Clone)]
pub struct Peppers {
    by_version: BTreeMap<i64, Vec<u8>>,
    current: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PepperError {
    #[error("failed to read the pepper file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "pepper file line {line}: expected `<version> <hex bytes>` with a positive version and at least {MIN_PEPPER_BYTES} bytes"
    )]
    BadLine { line: usize },
    #[error("pepper file line {line}: version {version} appears twice")]
    DuplicateVersion { line: usize, version: i64 },
    #[error("the pepper file holds no pepper")]
    Empty,
    #[error("the OS random number generator failed")]
    Random,
}

impl Peppers {
    /// Parses the pepper file format: one `<version> <hex>` per line, `#` comments.
    pub fn parse(text: &str) -> Result<Self, PepperError> {
        let mut by_version = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || PepperError::BadLine { line: line_no };
            let (version, bytes) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let version: i64 = version.parse().map_err(|_| bad())?;
            let bytes = hex::decode(bytes.trim()).map_err(|_| bad())?;
            if version < 1 || bytes.len() < MIN_PEPPER_BYTES {
                return Err(bad());
            }
            if by_version.insert(version, bytes).is_some() {
                return Err(PepperError::DuplicateVersion {
                    line: line_no,
                    version,
                });
            }
        }
        let current = *by_version.keys().next_back().ok_or(PepperError::Empty)?;
        Ok(Self {
            by_version,
            current,
        })
    }

    /// Reads the pepper file, creating it (mode 0600) with one fresh pepper if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, PepperError> {
        let io = |source| PepperError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let text = Self::fresh_file_text()?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, text.as_bytes()).map_err(io)?;
                tracing::info!(path = %path.display(), "created a new pepper file");
                Self::parse(&text)
            }
            Err(err) => Err(io(err)),
        }
    }

    /// The text of a new pepper file with version 1.
    pub fn fresh_file_text() -> Result<String, PepperError> {
        let mut bytes = [0u8; MIN_PEPPER_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| PepperError::Random)?;
        Ok(format!(
            "# Keysmith pepper file: `<version> <hex>` per line; the highest version signs new keys.\n1 {}\n",
            hex::encode(bytes)
        ))
    }

    /// The version new keys are hashed with.
    pub fn current_version(&self) -> i64 {
        self.current
    }

    /// HMAC-SHA-256 of `secret` under pepper `version`; `None` for an unknown version.
    pub fn digest(&self, version: i64, secret: &[u8]) -> Option<Digest> {
        let pepper = self.by_version.get(&version)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(pepper)
            .expect("HMAC accepts keys of any length");
        mac.update(secret);
        Some(mac.finalize().into_bytes().into())
    }

    /// Every loaded version, newest first: for values that were hashed
    /// under whichever pepper was current then and must still be found.
    pub fn versions(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_version.keys().rev().copied()
    }

    /// HMAC under the current pepper, for new keys.
    pub fn digest_current(&self, secret: &[u8]) -> Digest {
        self.digest(self.current, secret)
            .expect("the current version is always loaded")
    }

    /// Whether `secret` matches a stored hex digest made with pepper
    /// `version`, compared in constant time. `None` (no such row) still
    /// computes an HMAC, so an unknown id costs what a wrong secret does.
    pub fn matches(&self, stored: Option<(&str, i64)>, secret: &[u8]) -> bool {
        let (stored, version) = match stored {
            Some((hex_digest, version)) => (decode_digest(hex_digest), version),
            None => (None, self.current_version()),
        };
        let computed = self
            .digest(version, secret)
            .unwrap_or_else(|| self.digest_current(secret));
        computed.ct_eq(&stored.unwrap_or([0u8; DIGEST_LEN])).into()
    }
}

impl fmt::Debug for Peppers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peppers")
            .field("versions", &self.by_version.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn decode_digest(hex_digest: &str) -> Option<[u8; DIGEST_LEN]> {
    let mut out = [0u8; DIGEST_LEN];
    hex::decode_to_slice(hex_digest, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_version_is_current_and_old_versions_still_verify() {
        let text = format!(
            "1 {}\n# comment\n\n2 {}\n",
            "11".repeat(32),
            "22".repeat(32)
        );
        let peppers = Peppers::parse(&text).expect("valid file");
        assert_eq!(peppers.current_version(), 2);
        let old = peppers.digest(1, b"secret").expect("version 1 loaded");
        assert_ne!(old, peppers.digest_current(b"secret"));
        assert!(peppers.digest(3, b"secret").is_none());
    }

    #[test]
    fn rejects_short_duplicate_and_empty_files() {
        assert!(matches!(
            Peppers::parse("1 abcd"),
            Err(PepperError::BadLine { line: 1 })
        ));
        let dup = format!("1 {0}\n1 {0}", "11".repeat(32));
        assert!(matches!(
            Peppers::parse(&dup),
            Err(PepperError::DuplicateVersion { line: 2, .. })
        ));
        assert!(matches!(
            Peppers::parse("# nothing"),
            Err(PepperError::Empty)
        ));
        assert!(matches!(
            Peppers::parse(&("0 ".to_owned() + &"11".repeat(32))),
            Err(PepperError::BadLine { .. })
        ));
    }

    #[test]
    fn debug_never_prints_pepper_bytes() {
        let peppers = Peppers::parse(&format!("1 {}", "ab".repeat(32))).expect("valid");
        assert!(!format!("{peppers:?}").contains("abab"));
    }

    #[cfg(unix)]
    #[test]
    fn created_file_is_private_and_reloads_identically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "keysmith-pepper-{}",
            crate::key::base62::random_id(8)
        ));
        let path = dir.join("pepper");
        let created = Peppers::load_or_create(&path).expect("created");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let reloaded = Peppers::load_or_create(&path).expect("reloaded");
        assert_eq!(created.digest_current(b"x"), reloaded.digest_current(b"x"));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
