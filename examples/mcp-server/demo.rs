//! The demo MCP server: two tools behind the Keysmith verification layer.
//! Shared by `main.rs` and the integration tests.

use std::collections::BTreeMap;

use axum::{
    Router,
    http::{header::AUTHORIZATION, request::Parts},
};
use keysmith_verify::VerifyLayer;
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::Extension, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoRequest {
    /// Text to send back.
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Demo {
    tool_router: ToolRouter<Self>,
}

impl Demo {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

impl Default for Demo {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_router]
impl Demo {
    /// Every `x-keysmith-*` header the tool received (the layer's, and only
    /// those), and whether a credential reached it (it must not).
    #[tool(description = "Who is calling: the identity the Keysmith layer verified")]
    fn whoami(&self, Extension(parts): Extension<Parts>) -> String {
        let identity: BTreeMap<String, String> = parts
            .headers
            .iter()
            .filter(|(name, _)| {
                name.as_str()
                    .to_ascii_lowercase()
                    .replace('_', "-")
                    .starts_with("x-keysmith-")
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        serde_json::json!({
            "identity": identity,
            "authorization_seen": parts.headers.contains_key(AUTHORIZATION),
        })
        .to_string()
    }

    #[tool(description = "Echo the text back")]
    fn echo(&self, Parameters(EchoRequest { text }): Parameters<EchoRequest>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Keysmith demo: whoami and echo")
    }
}

/// The MCP endpoint itself, unprotected (what `keysmith gateway` fronts).
pub fn mcp_service() -> StreamableHttpService<Demo, LocalSessionManager> {
    StreamableHttpService::new(
        || Ok(Demo::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    )
}

/// `/mcp` behind the layer; `/healthz` outside it, for probes.
pub fn router(layer: VerifyLayer) -> Router {
    Router::new()
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(layer)
                .service(mcp_service()),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
}
