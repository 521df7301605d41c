//! One integration-test binary; files mirror the routes.

mod helpers;

mod service_users;
