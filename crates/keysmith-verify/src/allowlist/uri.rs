//! Resource URI patterns, and what a URI must be for a prefix to admit it.
//!
//! The layer compares bytes; the upstream may decode, normalise or join a
//! URI onto a directory before it reads anything. Wherever the two could
//! disagree about whether a URI lies under a prefix, the prefix does not
//! admit it: what follows the prefix is plain ASCII from a small set
//! (letters, digits, `-._~/!$&'()+,=`), with `%XX` escapes only of those
//! (and space) — never of `.`, `/`, `\`, `%`, `:` or a byte past ASCII —,
//! and the whole URI has no `.` or `..` segment and no `//` after its
//! `scheme://` (an upstream joining `/etc/passwd` onto its root ends at the
//! root). So `file:///public/*` admits `file:///public/a%20b.txt` but not
//! `file:///public/../secret`, `file:///public/%2e%2e/secret`,
//! `file:///public/..%5csecret`, `file:///public//etc/passwd` or
//! `file:///public/C:/x`. An exact pattern admits only its own bytes.
//!
//! A resource template (RFC 6570) is listed for a key only when every URI it
//! can expand to starts with an admitted prefix: its text before the first
//! `{` holds the whole prefix, and the template with each expression read
//! as one plain character is admitted. Anything else is hidden (fail
//! closed); its expansions are still judged one by one when read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest resource URI the layer passes on, and longest pattern.
pub const MAX_URI_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a resource pattern is `*`, an exact URI (1-2048 bytes, no spaces, control characters or `*`), or a plain prefix followed by `*` (ASCII without spaces or \\ ? # ; \" < > ^ ` {{ | }}, no `.` or `..` segment, no `//` after `scheme://`, %-escapes only of letters, digits, space and -_~!$&'()+,=)"
)]
pub struct InvalidUriPattern;

/// Whether the layer passes a requested URI on at all, whatever the key:
/// 1 to [`MAX_URI_LEN`] bytes, no control character.
pub fn valid_requested_uri(uri: &str) -> bool {
    (1..=MAX_URI_LEN).contains(&uri.len()) && !uri.chars().any(char::is_control)
}

/// One resource allowlist entry: `*`, an exact URI, or `prefix*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UriPattern(String);

impl UriPattern {
    pub fn parse(raw: &str) -> Result<Self, InvalidUriPattern> {
        let valid = raw == "*"
            || match raw.strip_suffix('*') {
                Some(prefix) => !prefix.is_empty() && plain_prefix(prefix),
                None => {
                    valid_requested_uri(raw)
                        && !raw.contains('*')
                        && !raw.chars().any(char::is_whitespace)
                }
            };
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidUriPattern)
        }
    }

    /// Whether the key may use the resource at `uri`.
    pub fn matches(&self, uri: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix('*') {
            Some(prefix) => {
                uri.len() <= MAX_URI_LEN
                    && uri
                        .strip_prefix(prefix)
                        .is_some_and(|rest| plain_remainder(rest) && plain_path(uri))
            }
            None => self.0 == uri,
        }
    }

    /// Whether every URI `template` can expand to is one this entry admits.
    pub fn covers_template(&self, template: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        let literal = &template[..template.find('{').unwrap_or(template.len())];
        let Some(skeleton) = skeleton(template) else {
            return false;
        };
        match self.0.strip_suffix('*') {
            Some(prefix) => literal.starts_with(prefix) && self.matches(&skeleton),
            None => literal == template && self.0 == template,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The template with each `{…}` expression as one plain character (`None`
/// for an unbalanced brace).
fn skeleton(template: &str) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return None;
        }
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        if rest[open + 1..close].contains('{') {
            return None;
        }
        out.push('x');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Characters a prefix itself may hold (the admin wrote it: schemes,
/// ports, `[::1]` and userinfo are fine).
fn prefix_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\\?#;*\"<>^`{|}%".contains(&b)
}

/// Characters that may follow a prefix.
fn remainder_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~/!$&'()+,=".contains(&b)
}

/// What a `%XX` escape may stand for: nothing an upstream's decoder could
/// turn into a separator, a dot, another escape or a drive letter's colon.
fn escapable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" -_~!$&'()+,=".contains(&b)
}

/// Every byte passes `allowed`, or is the `%` of a valid escape of an
/// [`escapable`] byte.
fn plain_bytes(text: &str, allowed: fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escaped = bytes
                .get(i + 1..i + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(b) if escapable(b) => i += 3,
                _ => return false,
            }
        } else if allowed(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn plain_remainder(rest: &str) -> bool {
    plain_bytes(rest, remainder_char)
}

fn plain_prefix(prefix: &str) -> bool {
    prefix.len() < MAX_URI_LEN && plain_bytes(prefix, prefix_char) && plain_path(prefix)
}

/// No `.` or `..` segment, and no `//` past the `scheme://` marker.
fn plain_path(uri: &str) -> bool {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    !path.contains("//")
        && !uri
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

impl TryFrom<String> for UriPattern {
    type Error = InvalidUriPattern;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UriPattern> for String {
    fn from(value: UriPattern) -> Self {
        value.0
    }
}

impl fmt::Display for UriPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl super::Pattern for UriPattern {
    type Invalid = InvalidUriPattern;

    fn parse(raw: &str) -> Result<Self, Self::Invalid> {
        UriPattern::parse(raw)
    }

    fn matches(&self, subject: &str) -> bool {
        UriPattern::matches(self, subject)
    }

    fn as_str(&self) -> &str {
        UriPattern::as_str(self)
    }
}
