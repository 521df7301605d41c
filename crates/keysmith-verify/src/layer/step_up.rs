//! Step-up for OAuth access tokens (RFC 6750 §3.1, MCP authorization): when
//! a protected resource refuses a token a tool, resource or prompt outside
//! its scopes, the `403` names the scope the request needs, so a client can
//! ask for a token that has it.

use super::{
    jsonrpc::{Message, Uses},
    refused::Refused,
    shared::Shared,
};
use crate::{
    outcome::{VerifiedKey, VerifyCode},
    scope::ScopeKind,
};

/// `refused` with `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope="…"` when `key` is an access token at a protected resource.
pub(super) fn challenge(
    shared: &Shared,
    key: &VerifiedKey,
    message: Option<&Message>,
    refused: Refused,
) -> Refused {
    match (&shared.resource, &key.token) {
        (Some(resource), Some(_)) => {
            let scope = needed_scope(message, refused.reason()).unwrap_or_default();
            refused.with_challenge(resource.insufficient_scope(&scope))
        }
        _ => refused,
    }
}

/// The scope that would have allowed the refused request: `tools:<name>`,
/// `resources:<uri>` or `prompts:<name>`.
fn needed_scope(message: Option<&Message>, code: VerifyCode) -> Option<String> {
    let (kind, subject) = match (message?, code) {
        (Message::ToolCall { name, .. }, _) => (ScopeKind::Tools, name.as_str()),
        (message, VerifyCode::ResourceNotAllowed) => match message.uses()? {
            Uses::Resource(uri) | Uses::Completion { resource: uri, .. } => {
                (ScopeKind::Resources, uri.as_deref()?)
            }
            Uses::Prompt(_) => return None,
        },
        (message, VerifyCode::PromptNotAllowed) => match message.uses()? {
            Uses::Prompt(name) | Uses::Completion { prompt: name, .. } => {
                (ScopeKind::Prompts, name.as_deref()?)
            }
            Uses::Resource(_) => return None,
        },
        _ => return None,
    };
    Some(format!("{}:{subject}", kind.as_str()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn method(uses: Uses) -> Message {
        Message::Method {
            method: "x".into(),
            id: json!(1),
            addresses: None,
            uses: Some(uses),
        }
    }

    #[test]
    fn the_scope_a_refusal_needs() {
        let tool = Message::ToolCall {
            name: "echo".into(),
            id: json!(1),
        };
        assert_eq!(
            needed_scope(Some(&tool), VerifyCode::ToolNotAllowed).as_deref(),
            Some("tools:echo")
        );
        let read = method(Uses::Resource(Some("test://static-text".into())));
        assert_eq!(
            needed_scope(Some(&read), VerifyCode::ResourceNotAllowed).as_deref(),
            Some("resources:test://static-text")
        );
        let prompt = method(Uses::Prompt(Some("greet".into())));
        assert_eq!(
            needed_scope(Some(&prompt), VerifyCode::PromptNotAllowed).as_deref(),
            Some("prompts:greet")
        );
        let completion = method(Uses::Completion {
            kind: Some("ref/prompt".into()),
            prompt: Some("greet".into()),
            resource: None,
        });
        assert_eq!(
            needed_scope(Some(&completion), VerifyCode::PromptNotAllowed).as_deref(),
            Some("prompts:greet")
        );
        assert_eq!(
            needed_scope(
                Some(&method(Uses::Resource(None))),
                VerifyCode::ResourceNotAllowed
            ),
            None
        );
        assert_eq!(needed_scope(None, VerifyCode::ToolNotAllowed), None);
    }
}
