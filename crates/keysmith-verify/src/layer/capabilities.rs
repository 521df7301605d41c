//! Refuses, before the upstream runs, a request for a tool, resource or
//! prompt outside the key's allowlists (`tools/call`; `resources/read`,
//! `…/subscribe`, `…/unsubscribe`; `prompts/get`; `completion/complete` of
//! a prompt or a resource). For a limited key, a governed request that does
//! not name what it uses the way the layer reads it (no `params.uri` string,
//! a completion `ref` of another type) is refused too: the upstream might
//! read something the layer did not.

use http::StatusCode;
use serde_json::Value;

use super::{
    jsonrpc::{INVALID_PARAMS, Message, REF_PROMPT, REF_RESOURCE, Uses},
    refused::Refused,
    shared::Shared,
    step_up,
};
use crate::{
    allowlist::{Allowlist, Pattern},
    outcome::{VerifiedKey, VerifyCode},
};

/// The JSON-RPC error code of a refused capability.
const NOT_ALLOWED: i64 = -32001;

/// The stage: `Err` when `message` uses what `key` may not; an access
/// token's refusal names the scope it lacks (step-up).
// Out of line: a stage a profile names (scripts/bench-instructions).
#[inline(never)]
pub(super) fn authorize(
    shared: &Shared,
    key: &VerifiedKey,
    message: Option<&Message>,
) -> Result<(), Refused> {
    match refusal(key, message) {
        None => Ok(()),
        Some(refused) => Err(step_up::challenge(shared, key, message, refused)),
    }
}

/// The refusal of `message` for `key`, if it uses what the key may not.
pub(super) fn refusal(key: &VerifiedKey, message: Option<&Message>) -> Option<Refused> {
    let allowed = &key.allowed;
    let message = message?;
    let id = message.id();
    if let Message::ToolCall { name, .. } = message {
        return (!allowed.tools().allows(name)).then(|| {
            let text = format!("this API key may not call the tool `{name}`");
            forbidden(id, text, VerifyCode::ToolNotAllowed)
        });
    }
    // A completion's `uri` may be a template: allowed when every URI it
    // expands to is.
    let resource = |uri: Option<&str>, template: bool| {
        let resources = allowed.resources();
        let permitted = match uri {
            Some(uri) if template => resources.covers_template(uri),
            Some(uri) => resources.allows(uri),
            None => !resources.is_limited(),
        };
        (!permitted).then(|| {
            let text = match uri {
                Some(uri) => format!("this API key may not use the resource `{uri}`"),
                None => "this API key may use only the resources it names, and this request names none in params.uri".to_owned(),
            };
            forbidden(id, text, VerifyCode::ResourceNotAllowed)
        })
    };
    let prompt = |name: Option<&str>| {
        (!permits(allowed.prompts(), name)).then(|| {
            let text = match name {
                Some(name) => format!("this API key may not use the prompt `{name}`"),
                None => "this API key may use only the prompts it names, and this request names none in params.name".to_owned(),
            };
            forbidden(id, text, VerifyCode::PromptNotAllowed)
        })
    };
    match message.uses()? {
        Uses::Resource(uri) => resource(uri.as_deref(), false),
        Uses::Prompt(name) => prompt(name.as_deref()),
        Uses::Completion {
            kind,
            prompt: name,
            resource: uri,
        } => {
            let limited = allowed.prompts().is_limited() || allowed.resources().is_limited();
            // Whatever the type says, a name or URI it carries must be allowed too.
            let (name, uri) = (name.as_deref(), uri.as_deref());
            match kind.as_deref() {
                Some(REF_PROMPT) => {
                    prompt(name).or_else(|| uri.and_then(|u| resource(Some(u), true)))
                }
                Some(REF_RESOURCE) => {
                    resource(uri, true).or_else(|| name.and_then(|n| prompt(Some(n))))
                }
                _ if limited => Some(unclear_reference(id)),
                _ => None,
            }
        }
    }
}

/// Whether `list` lets the key use `subject` (absent: only an unlimited list).
fn permits<P: Pattern>(list: &Allowlist<P>, subject: Option<&str>) -> bool {
    match subject {
        Some(subject) => list.allows(subject),
        None => !list.is_limited(),
    }
}

/// 403 with a JSON-RPC error that answers the request's id.
fn forbidden(id: &Value, message: String, code: VerifyCode) -> Refused {
    Refused::json_rpc(
        StatusCode::FORBIDDEN,
        code,
        id.clone(),
        NOT_ALLOWED,
        message,
    )
}

fn unclear_reference(id: &Value) -> Refused {
    Refused::json_rpc(
        StatusCode::BAD_REQUEST,
        VerifyCode::BadRequest,
        id.clone(),
        INVALID_PARAMS,
        "completion/complete needs params.ref of type ref/prompt (with name) or ref/resource (with uri)",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer::{
        TenantScope, VerifyLayer,
        tests::{OneKey, good_key},
    };

    fn tool_call(name: &str) -> Message {
        Message::ToolCall {
            name: name.into(),
            id: json!(1),
        }
    }

    #[test]
    fn a_tool_outside_the_allowlist_is_refused_before_the_upstream() {
        let layer = VerifyLayer::builder(OneKey, TenantScope::Any).build();
        let key = good_key();
        assert!(authorize(layer.shared(), &key, Some(&tool_call("echo"))).is_ok());
        assert!(authorize(layer.shared(), &key, None).is_ok(), "no message");
        let refused = authorize(layer.shared(), &key, Some(&tool_call("rm")));
        let refused = refused.expect_err("not in the allowlist");
        assert_eq!(refused.reason(), VerifyCode::ToolNotAllowed);
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
}
