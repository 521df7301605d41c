//! Keysmith: service API keys for machine clients.

pub mod app;
pub mod cli;
pub mod config;
pub mod connections;
pub mod db;
pub mod domain;
pub mod error;
pub mod files;
pub mod gateway;
pub mod health_probe;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;

pub use app::build_app;
pub use state::AppState;
