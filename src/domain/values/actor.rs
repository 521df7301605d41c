//! Who did something, as recorded in the audit log.

use std::fmt;

use crate::domain::AdminId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in admin (by id; the email is looked up when displayed).
    User { id: AdminId, email: String },
    /// A management key calling the JSON API.
    ManagementKey { key_id: String },
    /// The command line, run by whoever has shell access to the server.
    Cli,
    /// The scheduler.
    System,
    /// A secret scanner that reported a leaked key (e.g. GitHub secret scanning).
    Scanner(String),
}

impl Actor {
    /// The way in that acted, as the `via` label of the key-event metric.
    pub fn channel(&self) -> &'static str {
        match self {
            Self::User { .. } => "admin_ui",
            Self::ManagementKey { .. } => "api",
            Self::Cli => "cli",
            Self::System => "scheduler",
            Self::Scanner(_) => "scanner",
        }
    }

    /// For people (emails): who did it, in words.
    pub fn describe(&self) -> String {
        match self {
            Self::User { email, .. } => email.clone(),
            Self::ManagementKey { key_id } => format!("the management key {key_id}"),
            Self::Cli => "an operator on the command line".to_owned(),
            Self::System => "Keysmith".to_owned(),
            Self::Scanner(name) => name.clone(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { email, .. } => write!(f, "user:{email}"),
            Self::ManagementKey { key_id } => write!(f, "key:{key_id}"),
            Self::Cli => f.write_str("cli"),
            Self::System => f.write_str("system"),
            Self::Scanner(name) => write!(f, "scanner:{name}"),
        }
    }
}
