//! The tower layer MCP servers (and any HTTP service) put in front of their
//! endpoint: verify the bearer key, refuse what it may not do, inject the
//! verified identity, audit every request.
//!
//! # MCP mode (the default): the body decides, fail closed
//!
//! An upstream server acts on what *its* parser reads from the body, so the
//! layer never decides from headers. Every request body, whatever its method,
//! Content-Type or encoding, is read under the size cap and must be one
//! JSON-RPC message that every mainstream parser reads the same way (see
//! [`jsonrpc`] for the full rule: strict UTF-8, no duplicate or case-folded
//! duplicate members, safe integers, bounded nesting, no batches, a
//! `Content-Type: application/json` without a foreign charset, no
//! `Content-Encoding`). Anything else is `400` with a JSON-RPC error
//! (`-32700` or `-32600`) and never reaches the upstream; what does reach it
//! is exactly the bytes that were judged. A request for a tool, resource or
//! prompt outside the key's allowlists (`tools/call`, `resources/read`,
//! `…/subscribe`, `…/unsubscribe`, `prompts/get`, `completion/complete`:
//! see `capabilities.rs` and [`crate::allowlist`]) is `403`; any answer
//! that carries a listing (tools, resources, resource templates, prompts),
//! whatever request it answers, is filtered to the allowlists (a limited
//! key's every answer is read: ids collide, see `listings.rs`);
//! `Mcp-Name` / `Mcp-Method` headers, when sent, must agree with the body
//! in plain or `=?base64?…?=` form (else `400`, `-32020`) and go on
//! in one canonical spelling.
//! The audit names the tool of a `tools/call`, the method of any other
//! message, and `METHOD /path` only for requests without a body (or whose
//! body was refused unread). Every refusal of a genuine key of this tenant
//! is audited once, with its reason (the [`crate::VerifyCode`]), through
//! the one refusal builder (`refused.rs`) and the one audit line
//! (`audit_line.rs`).
//!
//! An MCP session belongs to the key it was issued to (see
//! [`crate::session`]): a request naming another key's session, or one the
//! layer never saw issued, is `404` before the upstream sees it.
//!
//! Routes that are not MCP opt out with
//! [`VerifyLayerBuilder::not_mcp`]: bodies are then not read, no allowlist is
//! enforced, sessions are not bound, and every request counts against the
//! key's rate and quota (there are no tool calls to count; per-tool
//! overrides do not apply).
//!
//! # Tenant scope
//!
//! [`VerifyLayer::builder`] takes a [`TenantScope`]: a layer serves one
//! tenant (another tenant's key is `401`, audited nowhere), or says
//! explicitly that it serves all.

// The tower-http layout: `layer.rs` builds, `service.rs` runs the pipeline,
// `future.rs` names its future; each stage of the pipeline has its file.
mod answer;
mod audit_line;
mod authenticate;
mod body;
mod capabilities;
mod forward_auth;
mod future;
mod guard;
mod headers;
pub mod jsonrpc;
#[expect(
    clippy::module_inception,
    reason = "tower-http layout: layer.rs, service.rs, future.rs"
)]
mod layer;
mod limited;
mod listings;
mod refused;
mod request_body;
mod routing_headers;
mod service;
mod session;
mod shared;
mod stage;
mod step_up;
#[cfg(test)]
mod tests;
mod upstream;

pub use body::LayerBody;
pub use forward_auth::{ForwardAuth, ForwardAuthResponse, OriginalRequest};
pub use future::ResponseFuture;
pub use guard::{GuardRefusal, RequestGuard};
pub use headers::{KEY_ID_HEADER, SERVICE_USER_HEADER, SERVICE_USER_ID_HEADER, TENANT_HEADER};
pub use layer::{VerifyLayer, VerifyLayerBuilder};
pub use service::VerifyService;
pub use session::MCP_SESSION_ID;
pub use shared::TenantScope;
