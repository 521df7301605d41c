//! Tool names and a key's tool allowlist.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tool name or pattern accepted (the MCP spec's limit for tool names).
pub const MAX_TOOL_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tool names are 1 to 128 characters from A-Z a-z 0-9 _ - . / : (a pattern may end in one `*`)"
)]
pub struct InvalidToolPattern;

fn is_tool_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b':')
}

/// One allowlist entry: an exact tool name, or `prefix*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ToolPattern(String);

impl ToolPattern {
    pub fn parse(raw: &str) -> Result<Self, InvalidToolPattern> {
        let name = raw.strip_suffix('*').unwrap_or(raw);
        let valid_name = name.bytes().all(is_tool_char) && raw.len() <= MAX_TOOL_NAME_LEN;
        // A bare `*` is allowed: it means "every tool", spelled out.
        if valid_name && (!name.is_empty() || raw == "*") {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidToolPattern)
        }
    }

    pub fn matches(&self, tool: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => tool.starts_with(prefix),
            None => self.0 == tool,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ToolPattern {
    type Error = InvalidToolPattern;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ToolPattern> for String {
    fn from(value: ToolPattern) -> Self {
        value.0
    }
}

impl fmt::Display for ToolPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most patterns one allowlist holds.
pub const MAX_ALLOWLIST_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAllowlist {
    #[error("list at least one tool, or give no list for every tool")]
    Empty,
    #[error("at most 100 entries")]
    TooLong,
    #[error(transparent)]
    Pattern(InvalidToolPattern),
}

/// Which tools a key may call. `None` in storage means every tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToolAllowlist(Option<Vec<ToolPattern>>);

impl ToolAllowlist {
    pub fn any_tool() -> Self {
        Self(None)
    }

    pub fn only(patterns: Vec<ToolPattern>) -> Self {
        Self(Some(patterns))
    }

    /// A key's allowlist as a person or a client gave it: at least one and
    /// at most [`MAX_ALLOWLIST_LEN`] patterns (an empty list is refused as a
    /// likely mistake; "every tool" is no list at all).
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Result<Self, InvalidAllowlist> {
        if list.is_empty() {
            return Err(InvalidAllowlist::Empty);
        }
        if list.len() > MAX_ALLOWLIST_LEN {
            return Err(InvalidAllowlist::TooLong);
        }
        list.iter()
            .map(|p| ToolPattern::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::only)
            .map_err(InvalidAllowlist::Pattern)
    }

    pub fn allows(&self, tool: &str) -> bool {
        match &self.0 {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.matches(tool)),
        }
    }

    pub fn patterns(&self) -> Option<&[ToolPattern]> {
        self.0.as_deref()
    }

    /// The stored form: a JSON array, or `None` for "every tool".
    pub fn to_storage(&self) -> Option<String> {
        self.0
            .as_ref()
            .map(|p| serde_json::to_string(p).expect("patterns serialize"))
    }

    /// Reads the stored form; a corrupt value allows nothing rather than everything.
    pub fn from_storage(stored: Option<&str>) -> Self {
        match stored {
            None => Self(None),
            Some(json) => Self(Some(serde_json::from_str(json).unwrap_or_else(|err| {
                tracing::error!(error = %err, "corrupt tool allowlist in storage; allowing no tool");
                Vec::new()
            }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> ToolAllowlist {
        ToolAllowlist::only(
            patterns
                .iter()
                .map(|p| ToolPattern::parse(p).expect("valid"))
                .collect(),
        )
    }

    #[test]
    fn exact_and_prefix_patterns() {
        let allow = list(&["whoami", "files/*"]);
        assert!(allow.allows("whoami"));
        assert!(allow.allows("files/read"));
        assert!(!allow.allows("whoami2"));
        assert!(!allow.allows("echo"));
        assert!(ToolAllowlist::any_tool().allows("anything"));
        assert!(!list(&[]).allows("whoami"));
        assert!(list(&["*"]).allows("x"));
    }

    #[test]
    fn lists_are_bounded() {
        assert_eq!(
            ToolAllowlist::from_list(&["a", "b*"]),
            Ok(list(&["a", "b*"]))
        );
        assert_eq!(
            ToolAllowlist::from_list::<&str>(&[]),
            Err(InvalidAllowlist::Empty)
        );
        assert_eq!(
            ToolAllowlist::from_list(&vec!["a"; 101]),
            Err(InvalidAllowlist::TooLong)
        );
        assert_eq!(
            ToolAllowlist::from_list(&["a", "b c"]),
            Err(InvalidAllowlist::Pattern(InvalidToolPattern))
        );
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in ["", "a b", "a*b", "**", "é", &"a".repeat(129)] {
            assert_eq!(ToolPattern::parse(bad), Err(InvalidToolPattern), "{bad:?}");
        }
    }

    #[test]
    fn storage_round_trip_and_corruption_fails_closed() {
        let allow = list(&["a", "b*"]);
        let stored = allow.to_storage();
        assert_eq!(ToolAllowlist::from_storage(stored.as_deref()), allow);
        assert_eq!(ToolAllowlist::any_tool().to_storage(), None);
        assert!(!ToolAllowlist::from_storage(Some("not json")).allows("a"));
    }
}
