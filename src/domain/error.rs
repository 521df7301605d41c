//! What the domain says went wrong, with no HTTP in it: the server's `error.rs` maps
//! each kind to a status and a body once (`impl From<DomainError> for AppError`).

/// A rule refused the request, or something under the domain failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Input not in the form asked for (a cursor, a limit, a kind); the code
    /// is stable and machine-readable (`invalid_cursor`).
    #[error("{1}")]
    Malformed(&'static str, String),
    /// Well-formed but invalid input: says what to fix.
    #[error("{0}")]
    Validation(String),
    /// Absent, or belongs to another tenant (the same answer for both).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The state of the object forbids the action (rotating a revoked key).
    #[error("{0}")]
    Conflict(String),
    /// Tried too often in too short a time.
    #[error("too many attempts, try again later")]
    TooManyAttempts,
    /// A dependency (the database) is unreachable: fail closed.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(err.into())
            }
            other => Self::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

impl From<keysmith_verify::BackendError> for DomainError {
    fn from(err: keysmith_verify::BackendError) -> Self {
        match err {
            keysmith_verify::BackendError::Database(err) => Self::from(err),
            unavailable => Self::Unavailable(unavailable.into()),
        }
    }
}
