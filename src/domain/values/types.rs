//! Input parsed into domain types at the edge: handlers and the CLI never pass
//! raw strings deeper than this.

use std::fmt;

use serde::Serialize;

use crate::domain::error::DomainError;

/// `as_str`, `Display` and `AsRef<str>` for a newtype over `String`
/// (these input types and the ids in `ids.rs`).
macro_rules! string_type {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use string_type;

/// A tenant's URL name: `acme`, `acme-prod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);
string_type!(TenantSlug);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let b = raw.as_bytes();
        let ok = (2..=40).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && !raw.ends_with('-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::validation(
                "a tenant slug is 2 to 40 lower-case letters, digits or hyphens, starting with a letter",
            ))
        }
    }
}

/// A human-chosen name (tenant, service user, key): trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(String);
string_type!(Name);

impl Name {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::validation(format!(
                "{field} must not be empty"
            )));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(format!(
                "{field} must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::validation(format!(
                "{field} must not contain control characters"
            )));
        }
        refuse_bidi_controls(field, trimmed)?;
        Ok(Self(trimmed.to_owned()))
    }
}

/// Optional free text, at most 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Description(String);
string_type!(Description);

impl Description {
    pub fn parse(raw: &str) -> Result<Option<Self>, DomainError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 1000 {
            return Err(DomainError::validation(
                "description must be at most 1000 characters",
            ));
        }
        refuse_bidi_controls("description", trimmed)?;
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }
}

/// Whether `c` is a bidirectional formatting character (see below).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Bidirectional formatting characters (embeddings, overrides, isolates and
/// the invisible marks) make a text display as something other than what it
/// is ("Trojan Source"): a key named to look like another on the admin
/// pages, in emails and in logs. No name or description needs them.
pub fn refuse_bidi_controls(field: &str, text: &str) -> Result<(), DomainError> {
    match text.chars().find(|c| is_bidi_control(*c)) {
        Some(c) => Err(DomainError::validation(format!(
            "{field} must not contain bidirectional formatting characters (U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// An email address, checked for shape (delivery is the only real test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);
string_type!(Email);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        let invalid = || {
            DomainError::validation("owner_email must be an email address like name@example.com")
        };
        if raw.len() > 254
            || raw
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(invalid());
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        let lowered = raw.to_ascii_lowercase();
        // The mailer's own parser has the last word: an address it would
        // refuse later must be refused now, not retried for hours.
        lowered.parse::<lettre::Address>().map_err(|_| invalid())?;
        Ok(Self(lowered))
    }
}

/// A key scope such as `keysmith:admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scope(String);
string_type!(Scope);

impl Scope {
    /// Lets a key call the JSON API for its own tenant.
    pub const ADMIN: &'static str = "keysmith:admin";
    /// Lets a key call `POST /api/v1/verify` for its own tenant, and nothing
    /// else: what a remote verifier needs, without the power to mint keys.
    pub const VERIFY: &'static str = "keysmith:verify";
    /// Lets a key report leaked keys for revocation (GitLab's token
    /// revocation API) and nothing else.
    pub const REVOKE_LEAKED: &'static str = "keysmith:revoke-leaked";

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::validation(
                "a scope is 1 to 64 characters from A-Z a-z 0-9 : _ - .",
            ))
        }
    }

    pub fn admin() -> Self {
        Self(Self::ADMIN.to_owned())
    }

    pub fn verify() -> Self {
        Self(Self::VERIFY.to_owned())
    }

    pub fn revoke_leaked() -> Self {
        Self(Self::REVOKE_LEAKED.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-prod-2").is_ok());
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac me",
            "acme_x",
            &"a".repeat(41),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            Name::parse("name", "  ci bot ").expect("ok").as_str(),
            "ci bot"
        );
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", &"x".repeat(101)).is_err());
        assert!(Name::parse("name", &"é".repeat(100)).is_ok());
        assert!(Name::parse("name", "a\u{0}b").is_err());
    }

    #[test]
    fn bidirectional_formatting_is_refused_in_names_and_descriptions() {
        let formatting = ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{200E}', '\u{200F}', '\u{061C}']);
        for c in formatting {
            let text = format!("deploy{c}yolped");
            let err = Name::parse("name", &text).expect_err("name");
            assert!(err.to_string().contains("bidirectional"), "{err}");
            assert!(Description::parse(&text).is_err(), "U+{:04X}", u32::from(c));
        }
        // Right-to-left text itself is fine: only the invisible formatting is not.
        assert!(Name::parse("name", "מפתח פריסה").is_ok());
        assert!(Description::parse("مفتاح النشر").is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ops@Example.com ").expect("ok").as_str(),
            "ops@example.com"
        );
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.com",
            "ops@example",
            "o ps@example.com",
            "ops@.com",
            "a@b@c.com",
            "<a@b.com>",
            "a(b)@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a\"b@example.com",
            "a@exa mple.com",
            "a@-example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a.b+tag@example.com",
            "o'brien@example.co.uk",
            "x@sub-domain.example.org",
        ] {
            let parsed = Email::parse(good).expect(good);
            assert!(parsed.as_str().parse::<lettre::Address>().is_ok(), "{good}");
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(Scope::admin().as_str(), "keysmith:admin");
        assert!(Scope::parse("read:files").is_ok());
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("a b").is_err());
    }

    proptest! {
        #[test]
        fn parsed_names_never_have_edge_whitespace(raw in "\\PC{0,120}") {
            if let Ok(name) = Name::parse("name", &raw) {
                prop_assert_eq!(name.as_str().trim(), name.as_str());
                prop_assert!(!name.as_str().is_empty());
            }
        }

        #[test]
        fn parsed_slugs_are_url_safe(raw in "[a-z0-9-]{0,45}") {
            if let Ok(slug) = TenantSlug::parse(&raw) {
                prop_assert!(slug.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            }
        }
    }
}
