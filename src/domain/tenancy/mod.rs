//! Who holds keys, and within what: tenants (their slugs, settings and the
//! operator's caps on them) and the service users that own a tenant's keys.

pub mod caps;
pub mod service_users;
pub mod tenants;
