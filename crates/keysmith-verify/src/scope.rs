//! OAuth scopes over a key's capabilities: `tools:<pattern>`,
//! `resources:<pattern>`, `prompts:<pattern>` (a pattern is a name or
//! `prefix*`, as in the allowlists; `tools:*` is every tool).
//!
//! A token's scopes narrow its key, never widen it: what a token reaches is,
//! kind by kind, what both the key's allowlist and the token's scopes allow.
//! As with allowlists, a token that names some kinds reaches nothing of the
//! kinds it does not name (least privilege).

use std::fmt;

use crate::{
    allowlist::{Allowlist, Capabilities, UriPattern},
    tools::ToolPattern,
};

/// The capability kinds a scope can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    Tools,
    Resources,
    Prompts,
}

impl ScopeKind {
    pub const ALL: [Self; 3] = [Self::Tools, Self::Resources, Self::Prompts];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Resources => "resources",
            Self::Prompts => "prompts",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Most scopes one request may name.
pub const MAX_SCOPES: usize = 100;

/// Why a `scope` parameter was refused; the message is the OAuth
/// `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidScope {
    #[error(
        "unknown scope `{0}`: scopes are tools:<name>, resources:<uri> or prompts:<name> (a trailing * for a prefix)"
    )]
    Unknown(String),
    #[error("at most 100 scopes")]
    TooMany,
    #[error("the scope `{0}` goes beyond what this key may use")]
    BeyondKey(String),
}

/// One scope, e.g. `tools:files/*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct McpScope {
    pub kind: ScopeKind,
    pattern: String,
}

impl McpScope {
    /// Every capability of `kind`.
    pub fn all(kind: ScopeKind) -> Self {
        Self {
            kind,
            pattern: "*".to_owned(),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidScope> {
        let unknown = || InvalidScope::Unknown(raw.chars().take(140).collect());
        let (kind, pattern) = raw.split_once(':').ok_or_else(unknown)?;
        let kind = ScopeKind::parse(kind).ok_or_else(unknown)?;
        let valid = match kind {
            ScopeKind::Tools | ScopeKind::Prompts => ToolPattern::parse(pattern).is_ok(),
            // A URI or URI prefix under the allowlists' own rules, in the
            // characters a scope token may carry (RFC 6749 §3.3).
            ScopeKind::Resources => {
                UriPattern::parse(pattern).is_ok()
                    && pattern
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'))
            }
        };
        if valid {
            Ok(Self {
                kind,
                pattern: pattern.to_owned(),
            })
        } else {
            Err(unknown())
        }
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl fmt::Display for McpScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.pattern)
    }
}

/// The patterns of one kind a key or a token reaches: `None` for every one.
pub type KindList = Option<Vec<String>>;

/// A set of scopes, as granted to a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<McpScope>);

impl ScopeSet {
    /// A space-separated `scope` parameter (RFC 6749 §3.3); duplicates dropped.
    pub fn parse(raw: &str) -> Result<Self, InvalidScope> {
        let mut scopes: Vec<McpScope> = Vec::new();
        for part in raw.split(' ').filter(|s| !s.is_empty()) {
            let scope = McpScope::parse(part)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
            if scopes.len() > MAX_SCOPES {
                return Err(InvalidScope::TooMany);
            }
        }
        Ok(Self(scopes))
    }

    /// The scopes that describe a key's own reach, given its list per kind.
    pub fn of_key(lists: impl Fn(ScopeKind) -> KindList) -> Self {
        let mut scopes = Vec::new();
        for kind in ScopeKind::ALL {
            match lists(kind) {
                None => scopes.push(McpScope::all(kind)),
                Some(patterns) => scopes.extend(
                    patterns
                        .into_iter()
                        .map(|pattern| McpScope { kind, pattern }),
                ),
            }
        }
        Self(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &McpScope> {
        self.0.iter()
    }

    /// The patterns of `kind` these scopes grant (none named: none).
    pub fn patterns(&self, kind: ScopeKind) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.pattern.clone())
            .collect()
    }

    /// Refuses the first scope that reaches beyond the key's list of its kind.
    pub fn within(&self, key: impl Fn(ScopeKind) -> KindList) -> Result<(), InvalidScope> {
        match self
            .0
            .iter()
            .find(|scope| !covers(scope.kind, key(scope.kind).as_deref(), &scope.pattern))
        {
            Some(beyond) => Err(InvalidScope::BeyondKey(beyond.to_string())),
            None => Ok(()),
        }
    }

    /// The stored form: a JSON array of scope strings.
    pub fn to_storage(&self) -> String {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        serde_json::to_string(&all).expect("strings serialize")
    }

    /// Reads the stored form; a corrupt value grants nothing.
    pub fn from_storage(stored: &str) -> Self {
        let parsed = serde_json::from_str::<Vec<String>>(stored)
            .ok()
            .and_then(|all| {
                all.iter()
                    .map(|s| McpScope::parse(s))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
            });
        Self(parsed.unwrap_or_else(|| {
            tracing::error!("corrupt token scopes in storage; granting nothing");
            Vec::new()
        }))
    }
}

impl fmt::Display for ScopeSet {
    /// The space-separated `scope` of a token response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            fmt::Display::fmt(scope, f)?;
        }
        Ok(())
    }
}

/// Whether `pattern` of `kind` matches `name`, by the allowlists' own rules
/// (a resource prefix admits only plain URIs).
fn matches(kind: ScopeKind, pattern: &str, name: &str) -> bool {
    match kind {
        ScopeKind::Resources => UriPattern::parse(pattern).is_ok_and(|p| p.matches(name)),
        ScopeKind::Tools | ScopeKind::Prompts => match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        },
    }
}

/// What two patterns both match, as one pattern (the language is closed
/// under intersection: a name, a prefix, or nothing).
fn meet(kind: ScopeKind, a: &str, b: &str) -> Option<String> {
    match (a.strip_suffix('*'), b.strip_suffix('*')) {
        (None, _) => matches(kind, b, a).then(|| a.to_owned()),
        (_, None) => matches(kind, a, b).then(|| b.to_owned()),
        (Some(p), Some(q)) if p.starts_with(q) => Some(a.to_owned()),
        (Some(p), Some(q)) if q.starts_with(p) => Some(b.to_owned()),
        _ => None,
    }
}

/// Whether every name `pattern` matches is in `list` (`None`: every name).
fn covers(kind: ScopeKind, list: Option<&[String]>, pattern: &str) -> bool {
    list.is_none_or(|list| {
        list.iter()
            .any(|allowed| meet(kind, pattern, allowed).as_deref() == Some(pattern))
    })
}

/// What both lists of `kind` reach (`None`: every name).
pub fn intersect(kind: ScopeKind, a: Option<&[String]>, b: Option<&[String]>) -> KindList {
    match (a, b) {
        (None, other) | (other, None) => other.map(<[String]>::to_vec),
        (Some(a), Some(b)) => {
            let mut both: Vec<String> = Vec::new();
            for meet in a
                .iter()
                .flat_map(|x| b.iter().filter_map(|y| meet(kind, x, y)))
            {
                if !both.contains(&meet) {
                    both.push(meet);
                }
            }
            Some(both)
        }
    }
}

/// What a token granted `scopes` reaches of its key's capabilities: kind by
/// kind, what both allow (a pattern no allowlist can read allows nothing).
pub fn narrow(key: &Capabilities, scopes: &ScopeSet) -> Capabilities {
    let reach = key_reach(key);
    let both = |kind| intersect(kind, reach(kind).as_deref(), Some(&scopes.patterns(kind)));
    Capabilities::new(
        Allowlist::from_remote(both(ScopeKind::Tools)),
        Allowlist::from_remote(both(ScopeKind::Resources)),
        Allowlist::from_remote(both(ScopeKind::Prompts)),
    )
}

/// What a key reaches, kind by kind (its allowlists under least privilege).
pub fn key_reach(key: &Capabilities) -> impl Fn(ScopeKind) -> KindList + '_ {
    move |kind| match kind {
        ScopeKind::Tools => key.tools().to_strings(),
        ScopeKind::Resources => key.resources().to_strings(),
        ScopeKind::Prompts => key.prompts().to_strings(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> KindList {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn parses_the_three_kinds() {
        let set = ScopeSet::parse(
            "tools:whoami  tools:files/* resources:test://static* prompts:greet tools:whoami",
        )
        .expect("valid");
        assert_eq!(set.patterns(ScopeKind::Tools), ["whoami", "files/*"]);
        assert_eq!(set.patterns(ScopeKind::Resources), ["test://static*"]);
        assert_eq!(set.patterns(ScopeKind::Prompts), ["greet"]);
        assert_eq!(
            set.to_string(),
            "tools:whoami tools:files/* resources:test://static* prompts:greet"
        );
        assert_eq!(ScopeSet::from_storage(&set.to_storage()), set);
        for bad in [
            "openid",
            "tools:",
            "tools:a b",
            "things:x",
            "tools:a*b",
            "resources:a\"b",
            "resources:*a*",
        ] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad}");
        }
        assert!(ScopeSet::from_storage("garbage").is_empty());
    }

    #[test]
    fn scopes_stay_within_the_key() {
        let key = |kind| match kind {
            ScopeKind::Tools => list(&["whoami", "files/*"]),
            ScopeKind::Resources => None,
            ScopeKind::Prompts => list(&[]),
        };
        for ok in [
            "tools:whoami",
            "tools:files/*",
            "tools:files/read",
            "tools:files/a*",
            "resources:*",
        ] {
            assert_eq!(
                ScopeSet::parse(ok).expect("valid").within(key),
                Ok(()),
                "{ok}"
            );
        }
        for beyond in [
            "tools:echo",
            "tools:*",
            "tools:file*",
            "tools:whoami*",
            "prompts:greet",
        ] {
            assert!(
                matches!(
                    ScopeSet::parse(beyond).expect("valid").within(key),
                    Err(InvalidScope::BeyondKey(_))
                ),
                "{beyond}"
            );
        }
    }

    #[test]
    fn intersections() {
        let both =
            |a: KindList, b: KindList| intersect(ScopeKind::Tools, a.as_deref(), b.as_deref());
        assert_eq!(both(None, None), None);
        assert_eq!(both(None, list(&["a"])), list(&["a"]));
        assert_eq!(
            both(list(&["files/*", "x"]), list(&["files/read", "x*", "y"])),
            list(&["files/read", "x"])
        );
        assert_eq!(both(list(&["a*"]), list(&["ab*"])), list(&["ab*"]));
        assert_eq!(
            both(list(&["ab*"]), list(&["a*", "abc"])),
            list(&["ab*", "abc"])
        );
        assert_eq!(both(list(&["a*"]), list(&["b*"])), list(&[]));
        let key = Capabilities::tools_only(vec![ToolPattern::parse("files/*").expect("valid")]);
        let narrowed = narrow(
            &key,
            &ScopeSet::parse("tools:files/read prompts:x").expect("valid"),
        );
        assert!(narrowed.tools().allows("files/read") && !narrowed.tools().allows("files/write"));
        assert!(!narrowed.prompts().allows("x"), "beyond the key: no prompt");
    }
}
