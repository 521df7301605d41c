//! Sessions live in the same database as everything else: tower-sessions'
//! SQLite or PostgreSQL store, chosen by the engine of `KEYSMITH_DATABASE_URL`.
//!
//! The store never sees a session id: every id is replaced by a hash of it
//! on the way in, so a reader of the database (a backup, a stolen file)
//! finds no cookie value to replay.

use async_trait::async_trait;
use sha2::Digest;
use tower_sessions::{
    ExpiredDeletion, SessionStore,
    session::{Id, Record},
    session_store,
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::config::{DatabaseUrl, Engine};

#[derive(Debug, Clone)]
pub enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// The id under which a session is stored: the first 128 bits of
/// SHA-256(id). The cookie's id has 128 random bits, so this is as unique
/// and cannot be turned back into the cookie.
pub fn stored_id(id: &Id) -> Id {
    let digest = sha2::Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

/// `record` as stored: the same, under its hashed id.
fn stored(record: &Record) -> Record {
    Record {
        id: stored_id(&record.id),
        ..record.clone()
    }
}

impl SessionBackend {
    /// A store on its own small pool over the same database (the store needs a
    /// concrete pool, the rest of the app an `AnyPool`). Connects lazily.
    pub fn connect_lazy(url: &DatabaseUrl) -> anyhow::Result<Self> {
        Ok(match url.engine() {
            Engine::Sqlite => Self::Sqlite(SqliteStore::new(sqlx::SqlitePool::connect_lazy(
                url.expose(),
            )?)),
            Engine::Postgres => Self::Postgres(PostgresStore::new(sqlx::PgPool::connect_lazy(
                url.expose(),
            )?)),
        })
    }

    pub async fn migrate(&self) -> sqlx::Result<()> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
            Self::Postgres(store) => store.migrate().await,
        }
    }

    /// Forgets expired sessions (scheduler).
    pub async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.delete_expired().await,
            Self::Postgres(store) => store.delete_expired().await,
        }
    }

    fn inner(&self) -> &dyn SessionStore {
        match self {
            Self::Sqlite(store) => store,
            Self::Postgres(store) => store,
        }
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let mut hashed = stored(record);
            let wanted = hashed.id;
            self.inner().create(&mut hashed).await?;
            if hashed.id == wanted {
                return Ok(());
            }
            // The inner store met a taken id and stored this one under a
            // fresh random id we cannot map back: drop it and draw again.
            self.inner().delete(&hashed.id).await?;
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner().save(&stored(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self
            .inner()
            .load(&stored_id(id))
            .await?
            .map(|record| Record { id: *id, ..record }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner().delete(&stored_id(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ids_differ_from_and_are_stable_for_their_id() {
        let id = Id::default();
        assert_ne!(stored_id(&id), id);
        assert_eq!(stored_id(&id), stored_id(&id));
        assert_ne!(stored_id(&id), stored_id(&Id::default()));
    }
}
