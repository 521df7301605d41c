//! What every stage reads: the layer's settings, shared by every clone of
//! the service and by forward-auth, and whose keys it accepts.

use std::sync::Arc;

use super::guard::RequestGuard;
use crate::{
    audit::AuditSink,
    backend::{Verifier, cache::CachedVerifier},
    clock::SharedClock,
    limit::Limiter,
    resource::ProtectedResource,
    session::Sessions,
};

/// Whose keys a layer accepts. There is no default: a layer in front of one
/// tenant's server that accepted every tenant's keys would let anyone with a
/// key anywhere in the instance in, so the choice is made where it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    /// Only keys of the tenant with this slug; any other key is `401`, and
    /// is not audited (it is not this service's business).
    Only(String),
    /// Keys of every tenant of the instance. Right for a shared service that
    /// itself tells tenants apart by the injected `x-keysmith-tenant`; wrong
    /// for a server that belongs to one tenant.
    Any,
}

impl TenantScope {
    pub fn only(slug: impl Into<String>) -> Self {
        Self::Only(slug.into())
    }

    pub fn admits(&self, tenant_slug: &str) -> bool {
        match self {
            Self::Only(slug) => slug == tenant_slug,
            Self::Any => true,
        }
    }
}

/// Settings shared by every clone of the service.
#[derive(Debug)]
pub(crate) struct Shared {
    pub verifier: CachedVerifier<Arc<dyn Verifier>>,
    pub tenant: TenantScope,
    /// Read every body as one JSON-RPC message and enforce the key's allowlists.
    pub mcp: bool,
    pub body_limit: usize,
    pub resource_metadata: Option<String>,
    /// The OAuth protected resource this layer is: tokens must be bound to it.
    pub resource: Option<ProtectedResource>,
    pub audit: Option<AuditSink>,
    pub clock: SharedClock,
    pub limiter: Arc<dyn Limiter>,
    pub metrics: crate::telemetry::LayerMetrics,
    /// MCP sessions bound to keys (MCP mode only).
    pub sessions: Option<Sessions>,
    pub guard: Option<Arc<dyn RequestGuard>>,
}
