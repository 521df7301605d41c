//! One integration-test binary; files mirror the routes.

mod helpers;
mod smtp_sink;

mod admin;
mod admin_browser;
mod admin_people;
mod chromium;
mod cli;
mod conformance;
mod emails;
mod fuzz;
mod gateway;
mod health;
mod keys;
mod mcp;
mod rotation;
mod secrets;
mod service_users;
mod tenancy;
mod verify;
