//! Sessions live in the same database as everything else: tower-sessions'
//! SQLite or PostgreSQL store, chosen by the engine of `KEYSMITH_DATABASE_URL`.

use async_trait::async_trait;
use tower_sessions::{
    SessionStore,
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
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.create(record).await,
            Self::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.save(record).await,
            Self::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(store) => store.load(id).await,
            Self::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.delete(id).await,
            Self::Postgres(store) => store.delete(id).await,
        }
    }
}
