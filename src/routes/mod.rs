pub mod api;
pub mod health;
