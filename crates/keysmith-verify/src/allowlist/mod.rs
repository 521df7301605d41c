//! What a key may reach over MCP: three allowlists (tools, resources,
//! prompts) and the least-privilege rule between them ([`Capabilities`]).

mod uri;

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use self::uri::{InvalidUriPattern, MAX_URI_LEN, UriPattern, valid_requested_uri};
use crate::tools::{InvalidToolPattern, ToolPattern};

/// One allowlist entry of some kind: an exact name or URI, or `prefix*`.
pub trait Pattern: Clone + fmt::Debug + PartialEq + Eq + Serialize + DeserializeOwned {
    type Invalid: std::error::Error;

    fn parse(raw: &str) -> Result<Self, Self::Invalid>;
    /// Whether this entry lets the key use `subject`.
    fn matches(&self, subject: &str) -> bool;
    fn as_str(&self) -> &str;
}

impl Pattern for ToolPattern {
    type Invalid = InvalidToolPattern;

    fn parse(raw: &str) -> Result<Self, Self::Invalid> {
        ToolPattern::parse(raw)
    }

    fn matches(&self, subject: &str) -> bool {
        ToolPattern::matches(self, subject)
    }

    fn as_str(&self) -> &str {
        ToolPattern::as_str(self)
    }
}

/// Prompt names follow the rule of tool names.
pub type PromptPattern = ToolPattern;

/// Most patterns one allowlist holds.
pub const MAX_ALLOWLIST_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAllowlist {
    #[error("list at least one entry, or leave the list out")]
    Empty,
    #[error("at most 100 entries")]
    TooLong,
    #[error("{0}")]
    Pattern(String),
}

/// What a key may use of one kind. `None` (in storage: `NULL`): every one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent, bound = "P: Pattern")]
pub struct Allowlist<P>(Option<Vec<P>>);

pub type ToolAllowlist = Allowlist<ToolPattern>;
pub type ResourceAllowlist = Allowlist<UriPattern>;
pub type PromptAllowlist = Allowlist<PromptPattern>;

impl<P> Default for Allowlist<P> {
    fn default() -> Self {
        Self(None)
    }
}

impl<P: Pattern> Allowlist<P> {
    /// No list: every one of the kind.
    pub fn any() -> Self {
        Self(None)
    }

    /// A list that names nothing.
    pub fn nothing() -> Self {
        Self(Some(Vec::new()))
    }

    pub fn only(patterns: Vec<P>) -> Self {
        Self(Some(patterns))
    }

    /// A list as a person or a client gave it: at least one and at most
    /// [`MAX_ALLOWLIST_LEN`] patterns (an empty list is refused as a likely
    /// mistake: "none of this kind" is leaving the list out while naming
    /// another).
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Result<Self, InvalidAllowlist> {
        if list.is_empty() {
            return Err(InvalidAllowlist::Empty);
        }
        if list.len() > MAX_ALLOWLIST_LEN {
            return Err(InvalidAllowlist::TooLong);
        }
        list.iter()
            .map(|p| P::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::only)
            .map_err(|e| InvalidAllowlist::Pattern(e.to_string()))
    }

    /// A list another Keysmith sent (the remote verifier): an entry that
    /// cannot be read allows nothing rather than everything.
    pub fn from_remote(list: Option<Vec<String>>) -> Self {
        Self(list.map(|l| l.iter().filter_map(|p| P::parse(p).ok()).collect()))
    }

    pub fn allows(&self, subject: &str) -> bool {
        match &self.0 {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.matches(subject)),
        }
    }

    /// Whether the key names a list of this kind (`["*"]` included).
    pub fn is_limited(&self) -> bool {
        self.0.is_some()
    }

    /// This list if named, else one that names nothing.
    fn or_nothing(self) -> Self {
        if self.is_limited() {
            self
        } else {
            Self::nothing()
        }
    }

    pub fn patterns(&self) -> Option<&[P]> {
        self.0.as_deref()
    }

    /// The list as the API shows it: `None` for every one.
    pub fn to_strings(&self) -> Option<Vec<String>> {
        self.patterns()
            .map(|p| p.iter().map(|e| e.as_str().to_owned()).collect())
    }

    /// The stored form: a JSON array, or `None` for every one.
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
                tracing::error!(error = %err, "corrupt allowlist in storage; allowing nothing");
                Vec::new()
            }))),
        }
    }
}

impl ResourceAllowlist {
    /// Whether every URI a resource template can expand to is allowed (see
    /// the `uri` module for how a template meets a pattern).
    pub fn covers_template(&self, template: &str) -> bool {
        match &self.0 {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.covers_template(template)),
        }
    }
}

/// A key's three allowlists under least privilege: a key that names none
/// reaches everything; a key that names any reaches, of the other kinds,
/// only what is named too (`["*"]` spells "every one of this kind"). The
/// rule is applied whenever the lists are put together, so a row written
/// before the rule existed (tools only) is read under it too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    tools: ToolAllowlist,
    resources: ResourceAllowlist,
    prompts: PromptAllowlist,
}

impl Capabilities {
    /// No allowlist at all: every tool, resource and prompt.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The lists a key names (`Allowlist::any()`: not named), under least
    /// privilege.
    pub fn new(
        tools: ToolAllowlist,
        resources: ResourceAllowlist,
        prompts: PromptAllowlist,
    ) -> Self {
        let named = tools.is_limited() || resources.is_limited() || prompts.is_limited();
        if !named {
            return Self::everything();
        }
        Self {
            tools: tools.or_nothing(),
            resources: resources.or_nothing(),
            prompts: prompts.or_nothing(),
        }
    }

    /// Only these tools (and so no resource or prompt).
    pub fn tools_only(tools: Vec<ToolPattern>) -> Self {
        Self::new(Allowlist::only(tools), Allowlist::any(), Allowlist::any())
    }

    pub fn tools(&self) -> &ToolAllowlist {
        &self.tools
    }

    pub fn resources(&self) -> &ResourceAllowlist {
        &self.resources
    }

    pub fn prompts(&self) -> &PromptAllowlist {
        &self.prompts
    }

    /// Whether the key names any list (its answers are then read for
    /// listings to filter).
    pub fn is_limited(&self) -> bool {
        self.tools.is_limited() || self.resources.is_limited() || self.prompts.is_limited()
    }

    /// The stored columns `(allowed_tools, allowed_resources, allowed_prompts)`.
    pub fn to_storage(&self) -> [Option<String>; 3] {
        [
            self.tools.to_storage(),
            self.resources.to_storage(),
            self.prompts.to_storage(),
        ]
    }

    pub fn from_storage(
        tools: Option<&str>,
        resources: Option<&str>,
        prompts: Option<&str>,
    ) -> Self {
        Self::new(
            Allowlist::from_storage(tools),
            Allowlist::from_storage(resources),
            Allowlist::from_storage(prompts),
        )
    }
}

#[cfg(test)]
mod tests;
