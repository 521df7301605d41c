//! `VerifyLayer` and its builder.

use std::{sync::Arc, time::Duration};

use tower::Layer;

use super::{
    ForwardAuth,
    guard::RequestGuard,
    service::VerifyService,
    shared::{Shared, TenantScope},
};
use crate::{
    audit::AuditSink,
    backend::{Verifier, cache::CachedVerifier},
    clock::{SharedClock, SystemClock},
    limit::{InMemoryLimiter, Limiter},
    resource::ProtectedResource,
    session::{self, InMemorySessions, SessionStore, Sessions},
};

#[derive(Debug, Clone)]
pub struct VerifyLayer {
    shared: Arc<Shared>,
}

impl VerifyLayer {
    /// A layer in MCP mode (see the crate docs) for the keys `tenant` admits.
    pub fn builder(verifier: impl Verifier, tenant: TenantScope) -> VerifyLayerBuilder {
        VerifyLayerBuilder {
            verifier: Arc::new(verifier),
            tenant,
            mcp: true,
            cache_ttl: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(1),
            body_limit: 1024 * 1024,
            resource_metadata: None,
            resource: None,
            audit: None,
            clock: Arc::new(SystemClock),
            limiter: Arc::new(InMemoryLimiter::new()),
            sessions: None,
            session_idle: session::DEFAULT_IDLE,
            guard: None,
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

    /// What the stages read, for their unit tests.
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
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
    tenant: TenantScope,
    mcp: bool,
    cache_ttl: Duration,
    negative_ttl: Duration,
    body_limit: usize,
    resource_metadata: Option<String>,
    resource: Option<ProtectedResource>,
    audit: Option<AuditSink>,
    clock: SharedClock,
    limiter: Arc<dyn Limiter>,
    /// `None`: an [`InMemorySessions`], made only if no store is given.
    sessions: Option<Arc<dyn SessionStore>>,
    session_idle: Duration,
    guard: Option<Arc<dyn RequestGuard>>,
}

impl VerifyLayerBuilder {
    /// The routes behind this layer are not MCP: bodies are not read, no
    /// allowlist is enforced (a key's tools, resources and prompts are not
    /// consulted), every request
    /// counts against the key's rate limit and quota (per-tool overrides do
    /// not apply), and the audit names requests `METHOD /path`. Never use it
    /// in front of an MCP server.
    pub fn not_mcp(mut self) -> Self {
        self.mcp = false;
        self
    }

    /// How long a verified key is trusted without asking the backend again
    /// (default 5 s; zero turns the cache off). Also the worst-case delay
    /// before a revocation made elsewhere takes effect here.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long a refused key (unknown, revoked, expired…) is answered from
    /// memory (default 1 s), so repeating it does not reach the database
    /// every time. Zero turns negative caching off.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Largest body read (default 1 MiB); larger is `413`.
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

    /// Makes this layer an OAuth protected resource (RFC 9728): it accepts
    /// access tokens bound to `resource` (and keys, as before), refuses
    /// tokens bound to any other resource (`401`), announces the metadata
    /// and scopes in every `401` challenge, and answers a tool outside a
    /// token's scopes `403` with `error="insufficient_scope"`. Without it,
    /// every access token is refused. Serve [`ProtectedResource::metadata`]
    /// at [`ProtectedResource::metadata_paths`] (the gateway does).
    pub fn protected_resource(mut self, resource: ProtectedResource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Where audit records go (see [`crate::audit::spawn_sql_audit`]).
    pub fn audit(mut self, sink: AuditSink) -> Self {
        self.audit = Some(sink);
        self
    }

    /// What counts calls against keys' rate limits and quotas. Default: an
    /// [`InMemoryLimiter`], which counts **per instance** — N instances
    /// allow N times each key's budget.
    pub fn limiter(mut self, limiter: impl Limiter) -> Self {
        self.limiter = Arc::new(limiter);
        self
    }

    /// As [`VerifyLayerBuilder::limiter`], for a limiter shared with other layers.
    pub fn shared_limiter(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Where MCP sessions are bound to the keys they were issued to. Default:
    /// an [`InMemorySessions`], which binds **per instance** — a session
    /// opened through one instance is `404` on every other. Give every
    /// instance the same [`crate::session::SqlSessions`] to share them.
    pub fn sessions(mut self, store: impl SessionStore) -> Self {
        self.sessions = Some(Arc::new(store));
        self
    }

    /// How long an MCP session's binding outlives its last use (default 24
    /// hours); after that its id is `404` and the client opens a new session.
    pub fn session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// A check on every request's head (the gateway's `Origin` check), made
    /// before the key is looked at; its refusal is the answer whatever the
    /// key, and is audited against a genuine key like the layer's own.
    pub fn guard(mut self, guard: impl RequestGuard) -> Self {
        self.guard = Some(Arc::new(guard));
        self
    }

    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The same judge without an inner service, for a reverse proxy that
    /// asks before it forwards (see [`ForwardAuth`]). The tenant is the
    /// proxy's, given with each request; bodies are never read, so the
    /// MCP settings (sessions, body limit, `not_mcp`) do not apply.
    pub fn build_forward_auth(self) -> ForwardAuth {
        ForwardAuth::new(self.build().shared)
    }

    pub fn build(self) -> VerifyLayer {
        VerifyLayer {
            shared: Arc::new(Shared {
                verifier: CachedVerifier::new(self.verifier, self.cache_ttl, self.clock.clone())
                    .negative_ttl(self.negative_ttl),
                tenant: self.tenant,
                mcp: self.mcp,
                body_limit: self.body_limit,
                resource_metadata: self.resource_metadata,
                resource: self.resource,
                audit: self.audit,
                clock: self.clock,
                limiter: self.limiter,
                metrics: Default::default(),
                sessions: self.mcp.then(|| {
                    let store = self
                        .sessions
                        .unwrap_or_else(|| Arc::new(InMemorySessions::new()));
                    Sessions::new(store, self.session_idle)
                }),
                guard: self.guard,
            }),
        }
    }
}
