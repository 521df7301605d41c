//! OAuth tokens: opaque, in the key format, told apart by a marker.
//!
//! `<prefix>_<marker>_<token id>_<secret><checksum>`, e.g.
//! `ks_at_4f9QzA1bC2dE3fG4_<22 secret chars><6 checksum chars>`, where the
//! marker is `at` (access token) or `rt` (refresh token). The parts are the
//! key format's (see [`crate::key`]): the same alphabet, lengths, CRC32
//! checksum and peppered HMAC of the secret in storage.
//!
//! **Never change this format in place** (tokens outlive a deploy). A token
//! can never be read as a key, nor a key as a token: `<prefix>_at` holds a
//! `_`, which no key prefix may, so [`ApiKey::parse`] refuses every token
//! and the gitleaks rule for keys does not match one.

use std::fmt;

use crate::key::{
    ApiKey, KEY_ID_LEN, KeyPrefix, MAX_KEY_LEN, MalformedKey, SECRET_LEN, check_id_secret_checksum,
    push_id_secret_checksum,
};

/// Upper bound of a well-formed token.
pub const MAX_TOKEN_LEN: usize = MAX_KEY_LEN + 3;

/// What a token is for. Only access tokens are accepted by the layer;
/// refresh tokens (the authorization-code slice) only at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn marker(self) -> &'static str {
        match self {
            Self::Access => "at",
            Self::Refresh => "rt",
        }
    }

    /// The stored `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    fn from_marker(marker: &str) -> Option<Self> {
        match marker {
            "at" => Some(Self::Access),
            "rt" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// A plaintext OAuth token: in memory only, while issued or verified.
/// `Debug` and `Display` never print the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthToken {
    full: String,
    kind: TokenKind,
    prefix_len: usize,
    id_start: usize,
    secret_start: usize,
}

impl OAuthToken {
    /// Mints a token of `kind` with a fresh random id and secret.
    pub fn generate(prefix: &KeyPrefix, kind: TokenKind) -> Self {
        let mut full = String::with_capacity(MAX_TOKEN_LEN);
        for part in [prefix.as_str(), "_", kind.marker(), "_"] {
            full.push_str(part);
        }
        push_id_secret_checksum(&mut full);
        Self::parse(&full).expect("a freshly generated token parses")
    }

    /// Parses and checksums a presented token, with no I/O.
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        if raw.len() > MAX_TOKEN_LEN || !raw.is_ascii() {
            return Err(MalformedKey);
        }
        let (rest, tail) = raw.rsplit_once('_').ok_or(MalformedKey)?;
        let (head, token_id) = rest.rsplit_once('_').ok_or(MalformedKey)?;
        let (prefix, marker) = head.rsplit_once('_').ok_or(MalformedKey)?;
        KeyPrefix::parse(prefix).map_err(|_| MalformedKey)?;
        let kind = TokenKind::from_marker(marker).ok_or(MalformedKey)?;
        check_id_secret_checksum(raw, token_id, tail)?;
        let id_start = head.len() + 1;
        Ok(Self {
            full: raw.to_owned(),
            kind,
            prefix_len: prefix.len(),
            id_start,
            secret_start: id_start + KEY_ID_LEN + 1,
        })
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    pub fn prefix(&self) -> &str {
        &self.full[..self.prefix_len]
    }

    /// The public token id: safe to log, store and show.
    pub fn token_id(&self) -> &str {
        &self.full[self.id_start..self.id_start + KEY_ID_LEN]
    }

    /// The secret part, the input of the stored HMAC.
    pub fn secret(&self) -> &[u8] {
        &self.full.as_bytes()[self.secret_start..self.secret_start + SECRET_LEN]
    }

    /// The plaintext, for the one token response that hands it out.
    pub fn expose(&self) -> &str {
        &self.full
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, marker, id) = (self.prefix(), self.kind.marker(), self.token_id());
        write!(f, "OAuthToken({prefix}_{marker}_{id}_[redacted])")
    }
}

impl fmt::Display for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a client may present as `Authorization: Bearer`: a key or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Key(ApiKey),
    Token(OAuthToken),
}

impl Credential {
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        ApiKey::parse(raw)
            .map(Self::Key)
            .or_else(|_| OAuthToken::parse(raw).map(Self::Token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::base62::CHECKSUM_LEN;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
        let raw = token.expose();
        assert!(raw.starts_with("ks_at_"), "{raw}");
        assert_eq!(raw.len(), 6 + KEY_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN);
        assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_eq!(token.prefix(), "ks");
        assert_eq!(token.kind(), TokenKind::Access);
        let refresh = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Refresh);
        assert!(refresh.expose().starts_with("ks_rt_"));
    }

    #[test]
    fn tokens_and_keys_never_pass_for_each_other() {
        let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
        let key = ApiKey::generate(&KeyPrefix::default());
        assert_eq!(ApiKey::parse(token.expose()), Err(MalformedKey));
        assert_eq!(OAuthToken::parse(key.expose()), Err(MalformedKey));
        assert!(matches!(
            Credential::parse(token.expose()),
            Ok(Credential::Token(_))
        ));
        assert!(matches!(
            Credential::parse(key.expose()),
            Ok(Credential::Key(_))
        ));
        // A prefix that spells a marker still makes a key, never a token.
        let at_key = ApiKey::generate(&KeyPrefix::parse("at").expect("prefix"));
        assert!(matches!(
            Credential::parse(at_key.expose()),
            Ok(Credential::Key(_))
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
        let secret = std::str::from_utf8(token.secret()).expect("ascii");
        let shown = format!("{token:?} {token}");
        assert!(!shown.contains(secret) && shown.contains(token.token_id()));
    }

    #[test]
    fn unknown_markers_are_refused() {
        let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
        let forged = token.expose().replacen("_at_", "_xt_", 1);
        assert_eq!(OAuthToken::parse(&forged), Err(MalformedKey));
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_rejected(
            position in any::<prop::sample::Index>(),
            replacement in "[A-Za-z0-9_]",
        ) {
            let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
            let mut bytes = token.expose().as_bytes().to_vec();
            let at = position.index(bytes.len());
            prop_assume!(bytes[at] != replacement.as_bytes()[0]);
            bytes[at] = replacement.as_bytes()[0];
            let mutated = String::from_utf8(bytes).expect("ascii");
            prop_assert!(Credential::parse(&mutated).is_err());
        }

        #[test]
        fn parse_never_panics(raw in "\\PC{0,80}") {
            let _ = Credential::parse(&raw);
        }
    }
}
