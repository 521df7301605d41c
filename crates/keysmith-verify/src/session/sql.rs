//! Bindings in the Keysmith database (`mcp_sessions`), shared by every
//! layer and gateway instance on it. Reached only when a session is issued,
//! ended, refreshed (every few minutes), or first seen by an instance: a
//! request without a session id never comes here.

use super::{Binding, SessionHash, SessionOwner, SessionStore, StoreFuture};

/// Bindings in the `mcp_sessions` table of the Keysmith database (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlSessions {
    pool: sqlx::AnyPool,
}

impl SqlSessions {
    pub fn new(pool: sqlx::AnyPool) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    key_id: String,
    tenant_id: String,
    seen_at: i64,
}

impl From<Row> for Binding {
    fn from(row: Row) -> Self {
        Self {
            owner: SessionOwner {
                key_id: row.key_id.into(),
                tenant_id: row.tenant_id.into(),
            },
            seen_at: row.seen_at,
        }
    }
}

const FIND: &str = "SELECT key_id, tenant_id, seen_at FROM mcp_sessions \
     WHERE session_hash = $1 AND seen_at >= $2";

impl SessionStore for SqlSessions {
    fn bind<'a>(
        &'a self,
        session: SessionHash,
        owner: &'a SessionOwner,
        now: i64,
        idle_before: i64,
    ) -> StoreFuture<'a, Option<Binding>> {
        Box::pin(async move {
            let hash = session.to_hex();
            // Cleanup rides on the rare write (once per session), by index.
            sqlx::query("DELETE FROM mcp_sessions WHERE seen_at < $1")
                .bind(idle_before)
                .execute(&self.pool)
                .await?;
            // The first binding wins; a second issue of the same id keeps it.
            sqlx::query(
                "INSERT INTO mcp_sessions (session_hash, key_id, tenant_id, created_at, seen_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (session_hash) DO NOTHING",
            )
            .bind(&hash)
            .bind(&*owner.key_id)
            .bind(&*owner.tenant_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            let held: Option<Row> = sqlx::query_as(FIND)
                .bind(&hash)
                .bind(idle_before)
                .fetch_optional(&self.pool)
                .await?;
            // None: ended between the two statements (bound to nobody).
            Ok(held.map(Binding::from))
        })
    }

    fn find(&self, session: SessionHash, idle_before: i64) -> StoreFuture<'_, Option<Binding>> {
        Box::pin(async move {
            let row: Option<Row> = sqlx::query_as(FIND)
                .bind(session.to_hex())
                .bind(idle_before)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(Binding::from))
        })
    }

    fn touch(&self, session: SessionHash, now: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE mcp_sessions SET seen_at = $2 WHERE session_hash = $1 AND seen_at < $2",
            )
            .bind(session.to_hex())
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn end(&self, session: SessionHash) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM mcp_sessions WHERE session_hash = $1")
                .bind(session.to_hex())
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }
}
