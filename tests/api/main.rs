//! One integration-test binary; files mirror the routes.

mod helpers;
mod smtp_sink;

mod admin;
mod admin_accounts;
mod admin_banner;
mod admin_browser;
mod admin_lifecycle_browser;
mod admin_people;
mod admin_policy;
mod admin_races;
mod admin_service_users;
mod admin_sessions;
mod admin_throttle;
mod admin_totp;
mod admin_totp_browser;
mod admins_api;
mod chromium;
mod cli;
mod conformance;
mod emails;
mod files;
mod fuzz;
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
