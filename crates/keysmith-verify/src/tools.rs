//! Tool (and prompt) names, and patterns of them: an exact name or `prefix*`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tool name or pattern accepted (the MCP spec's limit for tool names).
pub const MAX_TOOL_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("names are 1 to 128 characters from A-Z a-z 0-9 _ - . / : (a pattern may end in one `*`)")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_patterns() {
        let pattern = |p: &str| ToolPattern::parse(p).expect("valid");
        assert!(pattern("whoami").matches("whoami"));
        assert!(!pattern("whoami").matches("whoami2"));
        assert!(pattern("files/*").matches("files/read"));
        assert!(!pattern("files/*").matches("echo"));
        assert!(pattern("*").matches("anything"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in ["", "a b", "a*b", "**", "é", &"a".repeat(129)] {
            assert_eq!(ToolPattern::parse(bad), Err(InvalidToolPattern), "{bad:?}");
        }
    }
}
