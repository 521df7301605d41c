//! Shared application state, cheap to clone into every handler.

use std::sync::Arc;

use keysmith_verify::{Peppers, SharedClock, SqlVerifier};

use crate::{config::Config, db::Db, metrics::Metrics};

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub peppers: Arc<Peppers>,
    pub clock: SharedClock,
    pub verifier: SqlVerifier,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(db: Db, peppers: Peppers, clock: SharedClock, config: Config) -> Self {
        let peppers = Arc::new(peppers);
        let verifier = SqlVerifier::new(db.pool.clone(), peppers.clone(), clock.clone());
        Self {
            db,
            peppers,
            clock,
            verifier,
            config: Arc::new(config),
            metrics: Arc::default(),
        }
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.db.pool
    }
}
