//! A key's lifecycle state at a given moment: the one definition that the
//! verifier, the server's domain, the mailer and the admin pages use, and
//! the SQL filters derived from it (tested against it on both engines).
//!
//! The stored `status` lags behind time: the scheduler records expiries and
//! rotation cutoffs when it next runs, so the state is computed from the
//! stored status, the expiry and the cutoff, never read as is.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    /// Superseded by a rotation; works until its cutoff.
    Rotating,
    Expired,
    Revoked,
}

impl KeyState {
    pub const ALL: [Self; 4] = [Self::Active, Self::Rotating, Self::Expired, Self::Revoked];

    /// The state at `now` of a key stored with `status`, `expires_at` and
    /// `cutoff_at` (Unix seconds). Expiry wins over everything but an
    /// explicit revocation; a rotating key past its cutoff is as good as
    /// revoked; a status this code does not know works nowhere.
    pub fn at(status: &str, expires_at: i64, cutoff_at: Option<i64>, now: i64) -> Self {
        match status {
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            _ if now >= expires_at => Self::Expired,
            "rotating" if cutoff_at.is_some_and(|c| now >= c) => Self::Revoked,
            "rotating" => Self::Rotating,
            "active" => Self::Active,
            _ => Self::Revoked,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotating => "rotating",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// Whether a key in this state verifies.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Active | Self::Rotating)
    }

    /// A SQL condition over the columns `status`, `expires_at` and
    /// `cutoff_at`, true exactly for the rows in this state at the instant
    /// bound to the placeholder `now` (e.g. `"$2"`; it may appear several
    /// times). The same rules as [`KeyState::at`], for the statuses the
    /// schema allows (`active`, `rotating`, `expired`, `revoked`).
    pub fn sql_condition(self, now: &str) -> String {
        match self {
            Self::Active => format!("(status = 'active' AND expires_at > {now})"),
            Self::Rotating => format!(
                "(status = 'rotating' AND expires_at > {now} AND (cutoff_at IS NULL OR cutoff_at > {now}))"
            ),
            Self::Expired => format!(
                "(status = 'expired' OR (status IN ('active', 'rotating') AND expires_at <= {now}))"
            ),
            Self::Revoked => format!(
                "(status = 'revoked' OR (status = 'rotating' AND expires_at > {now} AND cutoff_at <= {now}))"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let at = |status, expires, cutoff| KeyState::at(status, expires, cutoff, 100);
        assert_eq!(at("active", 101, None), KeyState::Active);
        assert_eq!(
            at("active", 100, None),
            KeyState::Expired,
            "expiry is exclusive"
        );
        assert_eq!(at("rotating", 200, Some(101)), KeyState::Rotating);
        assert_eq!(at("rotating", 200, Some(100)), KeyState::Revoked);
        assert_eq!(at("rotating", 100, Some(100)), KeyState::Expired);
        assert_eq!(at("revoked", 50, None), KeyState::Revoked);
        assert_eq!(at("expired", 500, None), KeyState::Expired);
        assert_eq!(
            at("corrupt", 500, None),
            KeyState::Revoked,
            "unknown works nowhere"
        );
        assert!(!KeyState::Expired.is_usable() && KeyState::Rotating.is_usable());
    }
}
