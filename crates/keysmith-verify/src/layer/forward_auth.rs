//! Forward-auth: the layer's verdict for a request that a reverse proxy
//! holds (nginx `auth_request`, Traefik `ForwardAuth`, Caddy
//! `forward_auth`, Envoy `ext_authz`). The same stages as the layer's
//! pipeline — key verification, tenant, tool allowlist, limits, audit,
//! metrics — judged from what the proxy forwards, since the body never
//! reaches us: `Mcp-Method` and `Mcp-Name` say what an MCP message asks,
//! anything else is `METHOD /path`.
//!
//! The headers are all there is, so this enforces a tool allowlist only as
//! far as they go: an MCP server that does not check them against the body
//! (revisions before 2026-07-28) can be told one tool and asked another.
//! A key limited to some tools is therefore refused any request that may
//! carry a body without naming its method. The gateway, which reads the
//! body, is the fail-closed choice for MCP.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Empty;
use serde_json::{Value, json};

use super::{
    audit_line::{self, Subject},
    authenticate::{OTHER_TENANT, authenticate},
    body::LayerBody,
    capabilities,
    jsonrpc::{self, AddressedMember, HEADER_MISMATCH, Message},
    limited::limit,
    refused::Refused,
    request_body::refuse as bad_request,
    routing_headers::{self, MCP_METHOD, MCP_NAME},
    shared::{Shared, TenantScope},
};
use crate::{
    identity::{AuditIds, Identity},
    outcome::VerifyCode,
    telemetry,
};

/// What forward-auth answers: no body of the upstream's, only the verdict.
pub type ForwardAuthResponse = Response<LayerBody<Empty<Bytes>>>;

/// The layer's judge without an inner service (see the module docs). Built
/// with [`super::VerifyLayerBuilder::build_forward_auth`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct ForwardAuth {
    shared: Arc<Shared>,
}

/// The request the proxy holds, as it says: its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    pub method: Method,
    pub path: String,
}

impl ForwardAuth {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Judges the client's request for a proxy serving `tenant`: `headers`
    /// are those the proxy forwarded (the client's `Authorization`,
    /// `Mcp-Method`, `Mcp-Name`, `X-Request-Id`). `200` carries the identity
    /// headers to pass upstream; `401` with `WWW-Authenticate` for no or a
    /// bad key; `403` for a refused tool or another tenant's key; `429` with
    /// `Retry-After` over a limit; `400` for routing headers that cannot be
    /// read one way; `503` when the key or its limits cannot be checked.
    pub async fn judge(
        &self,
        tenant: &TenantScope,
        headers: &HeaderMap,
        original: &OriginalRequest,
    ) -> ForwardAuthResponse {
        let mut response = match self.verdict(tenant, headers, original).await {
            Ok(identity) => {
                let mut response = Response::new(LayerBody::own(Bytes::new()));
                service_headers(response.headers_mut(), &identity.headers);
                response
            }
            Err(refused) => refused.into_plain_response(),
        };
        // A verdict is for one request: no cache along the way may keep it.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// The layer's stages on what the proxy says: the identity headers to
    /// pass upstream, or the refusal.
    async fn verdict(
        &self,
        tenant: &TenantScope,
        headers: &HeaderMap,
        original: &OriginalRequest,
    ) -> Result<Arc<Identity>, Refused> {
        let started = Instant::now();
        let shared = &*self.shared;
        // The stages read the request's head; only its headers are the client's.
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers = headers.clone();
        parts.method = original.method.clone();
        let asked = asked(headers);
        let subject = match &asked {
            Ok(Some(message)) => Subject::Message(message),
            _ => Subject::Told(&original.method, &original.path),
        };
        let identity = match authenticate(shared, tenant, &parts).await {
            Ok(identity) => identity,
            Err(unverified) => {
                return Err(refuse_unverified(shared, &parts, subject, unverified, started).await);
            }
        };
        let refuse = |refused| {
            audit_line::refuse(shared, &parts, &identity.audit, subject, refused, started)
        };
        if let Some(refused) = smuggled_identity(headers) {
            return Err(refuse(refused).await);
        }
        let message = match &asked {
            Ok(message) => message.as_ref(),
            Err(refused) => return Err(refuse(refused.clone()).await),
        };
        if let Some(refused) = capability_refusal(&identity.key, message, original) {
            return Err(refuse(refused).await);
        }
        // A request that names an MCP message counts as the MCP layer counts
        // it (tool calls only); any other as a layer that is not MCP (all).
        if let Err(refused) = limit(shared, message.is_some(), &identity.key, message).await {
            return Err(refuse(refused).await);
        }
        shared.metrics.valid();
        let line = audit_line::line(shared, &parts, &identity.audit, subject, VerifyCode::Valid);
        audit_line::record(shared, line, Some(StatusCode::OK), started).await;
        Ok(identity)
    }
}

/// A request without a usable key: counted, and audited against a genuine
/// key of this tenant. The proxy serves one tenant: a genuine key of
/// another is forbidden here (and none of this tenant's business to audit).
async fn refuse_unverified(
    shared: &Shared,
    parts: &http::request::Parts,
    subject: Subject<'_>,
    unverified: super::authenticate::Unverified,
    started: Instant,
) -> Refused {
    telemetry::request(unverified.outcome);
    let refused = if unverified.outcome == OTHER_TENANT {
        forbidden("this key belongs to another tenant")
    } else {
        unverified.refused
    };
    if let Some((known, code)) = unverified.known {
        let line = audit_line::line(shared, parts, &AuditIds::of(&known), subject, code);
        audit_line::record(shared, line, Some(refused.status()), started).await;
    }
    refused
}

/// The identity the proxy copies onto the request it passes upstream.
fn service_headers(headers: &mut HeaderMap, identity: &[(HeaderName, HeaderValue)]) {
    for (name, value) in identity {
        headers.insert(name.clone(), value.clone());
    }
}

/// The MCP message the routing headers name (`None`: they name none), read
/// by the layer's own rule: the headers are decoded as the layer decodes
/// them and the message they spell is judged as a body would be.
fn asked(headers: &HeaderMap) -> Result<Option<Message>, Refused> {
    let mismatch = |what| bad_request(HEADER_MISMATCH, what, &Value::Null);
    let method = one_value(headers, &MCP_METHOD).map_err(|()| mismatch(TWICE))?;
    let name = one_value(headers, &MCP_NAME).map_err(|()| mismatch(TWICE))?;
    let Some(method) = method else {
        return match name {
            None => Ok(None),
            Some(_) => Err(mismatch(
                "Mcp-Name needs the Mcp-Method header it belongs to",
            )),
        };
    };
    let method = routing_headers::decode(method).ok_or_else(|| mismatch(UNREADABLE))?;
    let mut params = serde_json::Map::new();
    if let Some(name) = name {
        let name = routing_headers::decode(name).ok_or_else(|| mismatch(UNREADABLE))?;
        let Some(member) = AddressedMember::of(&method) else {
            return Err(mismatch("Mcp-Name is not defined for this Mcp-Method"));
        };
        params.insert(member.json_name().to_owned(), Value::String(name));
    }
    let body = json!({"jsonrpc": "2.0", "id": null, "method": method, "params": params});
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    jsonrpc::read_message(&body)
        .map(Some)
        .map_err(|r| bad_request(r.code, r.message, &Value::Null))
}

const TWICE: &str = "Mcp-Method and Mcp-Name may be sent once each";
const UNREADABLE: &str =
    "Mcp-Method and Mcp-Name must be plain visible ASCII or a well-formed =?base64?…?=";

/// The header's one value; `Err` when it is sent twice.
fn one_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (value, None) => Ok(value),
        _ => Err(()),
    }
}

/// An identity header the client sent: only Keysmith's answer may set them,
/// and a proxy that forwarded this one to us may forward it upstream too
/// (the recipes overwrite the four it copies; a name it does not know
/// would pass). Refused rather than ignored.
fn smuggled_identity(headers: &HeaderMap) -> Option<Refused> {
    headers
        .keys()
        .any(|name| super::headers::is_reserved(name.as_str()))
        .then(|| {
            bad_request(
                jsonrpc::INVALID_REQUEST,
                "x-keysmith-* headers are set by the proxy from Keysmith's answer, never by the client",
                &Value::Null,
            )
        })
}

/// A tool the key may not call, or, for a key limited to some tools, a
/// request that may carry a body without saying what it asks: the proxy
/// would pass a `tools/call` it cannot see.
fn capability_refusal(
    key: &crate::outcome::VerifiedKey,
    message: Option<&Message>,
    original: &OriginalRequest,
) -> Option<Refused> {
    // The layer's own judgement of tools, resources and prompts; only the
    // answer's shape is forward-auth's (`{"error": …}`, not JSON-RPC).
    if let Some(refused) = capabilities::refusal(key, message) {
        let code = refused.reason();
        let text = match message {
            Some(Message::ToolCall { name, .. }) => {
                format!("this API key may not call the tool `{name}`")
            }
            _ => "this API key may not use the resource or prompt this request names".to_owned(),
        };
        return Some(Refused::plain(
            StatusCode::FORBIDDEN,
            code,
            code.as_str(),
            text,
        ));
    }
    if message.is_none() && key.allowed.is_limited() && !cannot_carry_a_message(&original.method) {
        return Some(Refused::plain(
            StatusCode::FORBIDDEN,
            VerifyCode::ToolNotAllowed,
            "forbidden",
            "this key may use only some tools, resources or prompts, and the request does not name its MCP method (Mcp-Method): use an MCP client of revision 2026-07-28 or keysmith gateway",
        ));
    }
    None
}

/// Methods whose requests carry no MCP message (Streamable HTTP sends
/// messages only by POST; anything else with a body could be read as one).
fn cannot_carry_a_message(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS].contains(method)
}

/// Forbidden here: its reason is never audited (another tenant's key).
fn forbidden(message: &'static str) -> Refused {
    Refused::plain(
        StatusCode::FORBIDDEN,
        VerifyCode::NotFound,
        "forbidden",
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn subject(pairs: &[(&'static str, &'static str)]) -> Result<Option<String>, VerifyCode> {
        asked(&headers(pairs))
            .map(|m| m.map(|m| m.subject().to_owned()))
            .map_err(|refused| refused.reason())
    }

    #[test]
    fn routing_headers_name_the_message_as_the_layer_reads_them() {
        assert_eq!(subject(&[]), Ok(None), "no MCP message named");
        let call = [("mcp-method", "tools/call"), ("mcp-name", "whoami")];
        assert_eq!(subject(&call), Ok(Some("whoami".into())));
        let encoded = [
            ("mcp-method", "=?base64?dG9vbHMvY2FsbA==?="),
            ("mcp-name", " =?base64?8J+Ukg==?= "),
        ];
        assert_eq!(subject(&encoded), Ok(Some("🔒".into())));
        let read = [("mcp-method", "resources/read"), ("mcp-name", "file:///a")];
        assert_eq!(subject(&read), Ok(Some("resources/read".into())));
        assert_eq!(
            subject(&[("mcp-method", "notifications/initialized")]),
            Ok(Some("notifications/initialized".into()))
        );
    }

    #[test]
    fn headers_that_cannot_be_read_one_way_are_refused() {
        for pairs in [
            &[("mcp-method", "tools/call")][..],
            &[("mcp-name", "whoami")],
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?d2hvYW1?="),
            ],
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?d2hvYW1pAA==?="),
            ],
            &[("mcp-method", "tools/list"), ("mcp-name", "whoami")],
            &[("mcp-method", "TOOLS/CALL"), ("mcp-name", "whoami")],
            &[("mcp-method", "tools call"), ("mcp-name", "whoami")],
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "a"),
                ("mcp-name", "a"),
            ],
        ] {
            let refused = subject(pairs);
            assert!(
                matches!(
                    refused,
                    Err(VerifyCode::BadRequest | VerifyCode::HeaderMismatch)
                ),
                "{pairs:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn identity_headers_from_the_client_are_refused_in_any_spelling() {
        for name in ["x-keysmith-tenant", "X-Keysmith-Role", "x_keysmith_key_id"] {
            let mut sent = HeaderMap::new();
            sent.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static("forged"),
            );
            assert!(smuggled_identity(&sent).is_some(), "{name}");
        }
        assert!(smuggled_identity(&headers(&[("x-keysmithy", "other")])).is_none());
    }
}
