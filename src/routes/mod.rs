pub mod admin;
pub mod api;
pub mod health;
pub mod oauth;
