//! `VerifyLayer` and its builder.

use std::{sync::Arc, time::Duration};

use tower::Layer;

use super::service::VerifyService;
use crate::{
    audit::AuditSink,
    backend::Verifier,
    cache::CachedVerifier,
    clock::{SharedClock, SystemClock},
};

/// Settings shared by every clone of the service.
#[derive(Debug)]
pub(crate) struct Shared {
    pub verifier: CachedVerifier<Arc<dyn Verifier>>,
    pub body_limit: usize,
    pub resource_metadata: Option<String>,
    pub audit: Option<AuditSink>,
    pub clock: SharedClock,
}

#[derive(Debug, Clone)]
pub struct VerifyLayer {
    shared: Arc<Shared>,
}

impl VerifyLayer {
    pub fn builder(verifier: impl Verifier) -> VerifyLayerBuilder {
        VerifyLayerBuilder {
            verifier: Arc::new(verifier),
            cache_ttl: Duration::from_secs(5),
            body_limit: 1024 * 1024,
            resource_metadata: None,
            audit: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Forgets a key at once (call after revoking or rotating it on this instance).
    pub fn invalidate_key(&self, key_id: &str) {
        self.shared.verifier.invalidate_key(key_id);
    }

    /// Forgets every cached key.
    pub fn invalidate_all(&self) {
        self.shared.verifier.invalidate_all();
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService::new(inner, self.shared.clone())
    }
}

#[derive(Debug)]
pub struct VerifyLayerBuilder {
    verifier: Arc<dyn Verifier>,
    cache_ttl: Duration,
    body_limit: usize,
    resource_metadata: Option<String>,
    audit: Option<AuditSink>,
    clock: SharedClock,
}

impl VerifyLayerBuilder {
    /// How long a verified key is trusted without asking the backend again
    /// (default 5 s; zero turns the cache off). Also the worst-case delay
    /// before a revocation made elsewhere takes effect here.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Largest JSON-RPC body read to find the tool (default 1 MiB); larger is `413`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The protected resource metadata URL announced in `WWW-Authenticate`
    /// (MCP authorization spec).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Where audit records go (see [`crate::audit::spawn_sql_audit`]).
    pub fn audit(mut self, sink: AuditSink) -> Self {
        self.audit = Some(sink);
        self
    }

    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn build(self) -> VerifyLayer {
        VerifyLayer {
            shared: Arc::new(Shared {
                verifier: CachedVerifier::new(self.verifier, self.cache_ttl, self.clock.clone()),
                body_limit: self.body_limit,
                resource_metadata: self.resource_metadata,
                audit: self.audit,
                clock: self.clock,
            }),
        }
    }
}
