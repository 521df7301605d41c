//! One integration-test binary; files mirror the routes.

mod helpers;
mod smtp_sink;

mod admin;
mod admin_browser;
mod admin_people;
mod chromium;
mod cli;
mod emails;
mod gateway;
mod gateway_trust;
mod health;
mod keys;
mod mcp;
mod rotation;
mod scheduler;
mod secrets;
mod service_users;
mod setup;
mod tenancy;
mod tenant_policy;
mod verify;
