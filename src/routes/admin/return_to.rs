//! Where a person goes back to after a detour the sign-in forced on them.
//!
//! Someone answering an OAuth authorization request may first have to set
//! up TOTP (their tenant requires it) or choose a new password (after a
//! reset). The authorization page remembers its own URL in the server-side
//! session before sending them there; the password change and the TOTP
//! set-up take it back afterwards. Only an authorization request of this
//! origin is ever remembered or followed ([`safe_next`]), checked again when
//! taken, and a target older than [`FRESH_SECS`] is dropped: the detour is
//! no open redirect, and an abandoned request does not hijack a later,
//! unrelated password change.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{page::PageError, sign_in::safe_next};
use crate::{domain::UnixTime, domain::values::unix_time, error::AppError};

const RETURN_KEY: &str = "return_to";
/// An authorization request waits this long for its detour (its client
/// waits for an answer; ten minutes is ample for a password or a TOTP app).
const FRESH_SECS: i64 = 10 * 60;

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    target: String,
    #[serde(with = "unix_time::as_secs")]
    at: UnixTime,
}

fn session_error(e: tower_sessions::session::Error) -> PageError {
    PageError(AppError::Internal(anyhow::anyhow!("session: {e}")))
}

/// Remembers `target` for after the detour, if it is an authorization
/// request of this origin; anything else is not remembered (`false`).
pub async fn remember(session: &Session, target: &str, now: UnixTime) -> Result<bool, PageError> {
    let Some(target) = safe_next(target) else {
        return Ok(false);
    };
    let pending = Pending {
        target: target.to_owned(),
        at: now,
    };
    session
        .insert(RETURN_KEY, pending)
        .await
        .map_err(session_error)?;
    Ok(true)
}

/// The remembered target, still fresh and safe, without forgetting it.
pub async fn peek(session: &Session, now: UnixTime) -> Result<Option<String>, PageError> {
    let pending: Option<Pending> = session.get(RETURN_KEY).await.map_err(session_error)?;
    Ok(pending.and_then(|p| usable(p, now)))
}

/// The remembered target, still fresh and safe; forgotten either way.
pub async fn take(session: &Session, now: UnixTime) -> Result<Option<String>, PageError> {
    let pending: Option<Pending> = session.remove(RETURN_KEY).await.map_err(session_error)?;
    Ok(pending.and_then(|p| usable(p, now)))
}

fn usable(pending: Pending, now: UnixTime) -> Option<String> {
    let fresh = (now - pending.at).whole_seconds() <= FRESH_SECS;
    (fresh && safe_next(&pending.target).is_some()).then_some(pending.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn at(secs: i64) -> UnixTime {
        UnixTime::from(OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).expect("time"))
    }

    fn pending(target: &str, secs: i64) -> Pending {
        Pending {
            target: target.to_owned(),
            at: at(secs),
        }
    }

    #[test]
    fn only_a_fresh_authorization_request_of_this_origin_is_followed() {
        let good = "/oauth/acme/authorize?client_id=x&state=s";
        assert_eq!(
            usable(pending(good, 0), at(FRESH_SECS)),
            Some(good.to_owned())
        );
        assert_eq!(usable(pending(good, 0), at(FRESH_SECS + 1)), None, "stale");
        for bad in [
            "https://evil.example/oauth/acme/authorize?x=1",
            "//evil.example/oauth/acme/authorize",
            "/admin/api-keys",
            "/oauth/acme/token",
        ] {
            assert_eq!(usable(pending(bad, 0), at(1)), None, "{bad}");
        }
    }
}
