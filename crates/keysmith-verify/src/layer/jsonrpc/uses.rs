//! What a request asks to use that a key's resource and prompt allowlists
//! govern, as its body names it.

use crate::allowlist::valid_requested_uri;

pub const RESOURCES_READ: &str = "resources/read";
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
pub const PROMPTS_GET: &str = "prompts/get";
pub const COMPLETION_COMPLETE: &str = "completion/complete";

/// A completion's `ref.type` for a prompt, and for a resource (template).
pub const REF_PROMPT: &str = "ref/prompt";
pub const REF_RESOURCE: &str = "ref/resource";

/// The methods an allowlist governs besides `tools/call`: each must be
/// spelled exactly, as an upstream that matched another case would act on
/// what the layer took for some other method.
pub const GOVERNED: [&str; 5] = [
    RESOURCES_READ,
    RESOURCES_SUBSCRIBE,
    RESOURCES_UNSUBSCRIBE,
    PROMPTS_GET,
    COMPLETION_COMPLETE,
];

/// What a governed request uses (`None` inside: the body does not say, as a
/// string under the exact member name; a limited key is then refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uses {
    /// `params.uri` of `resources/read`, `/subscribe`, `/unsubscribe`.
    Resource(Option<String>),
    /// `params.name` of `prompts/get`.
    Prompt(Option<String>),
    /// `params.ref` of `completion/complete`: its `type`, and the `name`
    /// and `uri` it carries (an upstream may read either, so both count).
    Completion {
        kind: Option<String>,
        prompt: Option<String>,
        resource: Option<String>,
    },
}

/// The strings of `params` a governed method is judged by.
#[derive(Debug, Default, Clone, Copy)]
pub struct Named<'a> {
    pub name: Option<&'a str>,
    pub uri: Option<&'a str>,
    /// `params.ref`, when an object: its `type`, `name` and `uri`.
    pub reference: Option<[Option<&'a str>; 3]>,
}

/// What `method` uses, or why its body is refused for every key: a URI
/// longer than [`crate::allowlist::MAX_URI_LEN`] or holding a control
/// character is passed to no upstream.
pub fn uses_of(method: &str, named: Named<'_>) -> Result<Option<Uses>, &'static str> {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let uses = match method {
        RESOURCES_READ | RESOURCES_SUBSCRIBE | RESOURCES_UNSUBSCRIBE => {
            Uses::Resource(owned(named.uri))
        }
        PROMPTS_GET => Uses::Prompt(owned(named.name)),
        COMPLETION_COMPLETE => {
            let [kind, prompt, resource] = named.reference.unwrap_or_default();
            Uses::Completion {
                kind: owned(kind),
                prompt: owned(prompt),
                resource: owned(resource),
            }
        }
        _ => return Ok(None),
    };
    let uri = match &uses {
        Uses::Resource(uri) | Uses::Completion { resource: uri, .. } => uri.as_deref(),
        Uses::Prompt(_) => None,
    };
    if uri.is_some_and(|u| !valid_requested_uri(u)) {
        return Err("a resource URI must be 1-2048 bytes without control characters");
    }
    Ok(Some(uses))
}
