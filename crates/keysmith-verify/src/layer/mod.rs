//! The tower layer MCP servers (and any HTTP service) put in front of their
//! endpoint: verify the bearer key, refuse what it may not do, inject the
//! verified identity, audit every request.

mod future;
mod headers;
#[expect(
    clippy::module_inception,
    reason = "tower-http layout: layer.rs, service.rs, future.rs"
)]
mod layer;
mod mcp;
mod service;

pub use future::ResponseFuture;
pub use headers::{KEY_ID_HEADER, SERVICE_USER_HEADER, SERVICE_USER_ID_HEADER, TENANT_HEADER};
pub use layer::{VerifyLayer, VerifyLayerBuilder};
pub use mcp::ToolCall;
pub use service::VerifyService;
