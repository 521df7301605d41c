//! Bindings in Redis, shared by every layer and gateway instance using it:
//! the choice for instances without the Keysmith database (the remote
//! backend) that share an upstream's sessions. Each binding is one hash,
//! `{prefix}:{SHA-256 of the session id}`, that Redis expires once it has
//! been idle for the layer's idle time.

use std::time::Duration;

use redis::{
    AsyncCommands, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{Binding, DEFAULT_IDLE, SessionHash, SessionOwner, SessionStore, StoreFuture};
use crate::backend::BackendError;

/// Bindings in Redis. Cheap to share behind an `Arc`.
pub struct RedisSessions {
    connection: ConnectionManager,
    bind: Script,
    touch: Script,
    prefix: String,
    /// How long Redis keeps a binding nobody uses.
    expiry_secs: i64,
    timeout: Duration,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: not shown.
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// Bindings under `keysmith:sessions` in the Redis at `url`, kept for
    /// [`DEFAULT_IDLE`] unused (match the layer's `session_idle`, see
    /// [`RedisSessions::idle`]). Connects lazily: an unreachable Redis makes
    /// requests that name a session `503`, not startup fail.
    pub fn connect(url: &str) -> Result<Self, BackendError> {
        let timeout = Duration::from_secs(1);
        let client = redis::Client::open(url)
            .map_err(|e| BackendError::Remote(format!("bad redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| BackendError::Remote(format!("redis: {e}")))?;
        Ok(Self {
            connection,
            bind: Script::new(include_str!("bind.lua")),
            touch: Script::new(include_str!("touch.lua")),
            prefix: "keysmith:sessions".to_owned(),
            expiry_secs: i64::try_from(DEFAULT_IDLE.as_secs()).unwrap_or(i64::MAX),
            timeout,
        })
    }

    /// How long Redis keeps a binding nobody uses (default 24 hours).
    pub fn idle(mut self, idle: Duration) -> Self {
        self.expiry_secs = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// Keys under `prefix` instead of `keysmith:sessions`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, session: SessionHash) -> String {
        format!("{}:{}", self.prefix, session.to_hex())
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(BackendError::Remote(format!("redis: {err}"))),
            Err(_) => Err(BackendError::Remote(format!(
                "redis: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// A binding from the hash's fields (`None` if any is missing or garbled).
fn binding(fields: [Option<String>; 3]) -> Option<Binding> {
    let [Some(key_id), Some(tenant_id), Some(seen_at)] = fields else {
        return None;
    };
    Some(Binding {
        owner: SessionOwner {
            key_id: key_id.into(),
            tenant_id: tenant_id.into(),
        },
        seen_at: seen_at.parse().ok()?,
    })
}

impl SessionStore for RedisSessions {
    fn bind<'a>(
        &'a self,
        session: SessionHash,
        owner: &'a SessionOwner,
        now: i64,
        idle_before: i64,
    ) -> StoreFuture<'a, Option<Binding>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let mut invocation = self.bind.key(self.key(session));
            invocation
                .arg(&*owner.key_id)
                .arg(&*owner.tenant_id)
                .arg(now)
                .arg(idle_before)
                .arg(self.expiry_secs);
            let held: [Option<String>; 3] = self
                .bounded(invocation.invoke_async(&mut connection))
                .await?;
            Ok(binding(held))
        })
    }

    fn find(&self, session: SessionHash, idle_before: i64) -> StoreFuture<'_, Option<Binding>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let key = self.key(session);
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&key).arg("k").arg("t").arg("s");
            let held: [Option<String>; 3] =
                self.bounded(hmget.query_async(&mut connection)).await?;
            Ok(binding(held).filter(|b| b.seen_at >= idle_before))
        })
    }

    fn touch(&self, session: SessionHash, now: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let mut invocation = self.touch.key(self.key(session));
            invocation.arg(now).arg(self.expiry_secs);
            let _: i64 = self
                .bounded(invocation.invoke_async(&mut connection))
                .await?;
            Ok(())
        })
    }

    fn end(&self, session: SessionHash) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = self.bounded(connection.del(self.key(session))).await?;
            Ok(())
        })
    }
}
