//! Who did something, as recorded in the audit log.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in admin (by id; the email is looked up when displayed).
    User { id: String, email: String },
    /// A management key calling the JSON API.
    ManagementKey { key_id: String },
    /// The command line, run by whoever has shell access to the server.
    Cli,
    /// The scheduler.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { email, .. } => write!(f, "user:{email}"),
            Self::ManagementKey { key_id } => write!(f, "key:{key_id}"),
            Self::Cli => f.write_str("cli"),
            Self::System => f.write_str("system"),
        }
    }
}
