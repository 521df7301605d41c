//! Configuration values that carry credentials: kept out of `Debug`.

use std::fmt;

/// A configuration value that may carry credentials (the SMTP URL).
#[derive(Clone)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Shortest `KEYSMITH_FORWARD_AUTH_TOKEN` accepted: it is all that stands
/// between the internet and a key-checking oracle that writes audit rows.
const MIN_FORWARD_AUTH_TOKEN_LEN: usize = 32;

pub(super) fn forward_auth_token(raw: Option<String>) -> anyhow::Result<Option<Secret>> {
    match raw.filter(|t| !t.is_empty()) {
        Some(token) if token.len() < MIN_FORWARD_AUTH_TOKEN_LEN => anyhow::bail!(
            "KEYSMITH_FORWARD_AUTH_TOKEN must be at least {MIN_FORWARD_AUTH_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
        ),
        token => Ok(token.map(Secret)),
    }
}
