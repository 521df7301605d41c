//! The session stage: a request naming an MCP session (`Mcp-Session-Id`)
//! goes on only for the key the session was issued to; a session id the
//! upstream issues is bound to the key that asked (see [`crate::session`]).
//!
//! A session id from another key, or one this layer never saw issued (made
//! up, ended, aged out), is `404`: what the MCP Streamable HTTP transport
//! answers an unknown session, so a client opens a new one. The same holds
//! for POST, the GET stream and DELETE alike.

use http::{HeaderMap, HeaderName, Method, Response, StatusCode, request::Parts};

use super::{refused::Refused, shared::Shared};
use crate::{
    identity::Identity,
    outcome::VerifyCode,
    session::{SessionHash, SessionOwner, Sessions},
    telemetry,
};

pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// The session a request was admitted into.
#[derive(Debug, Default)]
pub(super) struct Admitted {
    session: Option<SessionHash>,
    /// A DELETE: ends the binding once the upstream has ended the session.
    ends: bool,
}

/// Lets the request on if the session it names (if any) is `identity`'s.
pub(super) async fn admit(
    shared: &Shared,
    parts: &mut Parts,
    identity: &Identity,
) -> Result<Admitted, Refused> {
    let Some(sessions) = &shared.sessions else {
        return Ok(Admitted::default());
    };
    scrub_lookalikes(&mut parts.headers);
    if parts.uri.query().is_some_and(names_a_session) {
        tracing::info!("MCP session named in the URL (HTTP+SSE transport) refused");
        return Err(not_found());
    }
    let mut values = parts.headers.get_all(MCP_SESSION_ID).iter();
    let session = match (values.next(), values.next()) {
        (None, _) => return Ok(Admitted::default()),
        (Some(value), None) => SessionHash::of(value.as_bytes()),
        // Servers differ on which of two counts: neither does.
        (Some(_), Some(_)) => {
            return Err(Refused::plain(
                StatusCode::BAD_REQUEST,
                VerifyCode::BadRequest,
                "bad_request",
                "one Mcp-Session-Id header at most",
            ));
        }
    };
    let now = shared.clock.now().unix_timestamp();
    match sessions.owner(session, now).await {
        Ok(Some(owner)) if owner == SessionOwner::of(&identity.audit) => Ok(Admitted {
            session: Some(session),
            ends: parts.method == Method::DELETE,
        }),
        Ok(_) => {
            tracing::info!("MCP session of another key, or never issued, refused");
            Err(not_found())
        }
        Err(err) => Err(unavailable(&err)),
    }
}

/// Binds a session the upstream's answer issues to the key that asked, and
/// forgets one its DELETE ended, before the client sees the answer (its next
/// request may reach another instance). An answer whose session cannot be
/// bound to this key is not passed on.
pub(super) async fn settle<R>(
    shared: &Shared,
    admitted: &Admitted,
    identity: &Identity,
    response: Response<R>,
) -> Result<Response<R>, Refused> {
    let Some(sessions) = &shared.sessions else {
        return Ok(response);
    };
    let mut issued = response.headers().get_all(MCP_SESSION_ID).iter();
    let issued = match (issued.next(), issued.next()) {
        (None, _) => None,
        (Some(value), None) => Some(SessionHash::of(value.as_bytes())),
        (Some(_), Some(_)) => {
            tracing::warn!("upstream answered two Mcp-Session-Id headers: answer withheld");
            return Err(bad_gateway());
        }
    };
    match issued {
        // Echoed on a request in the session it names: nothing new.
        Some(session) if admitted.session == Some(session) => {}
        Some(session) => {
            let owner = SessionOwner::of(&identity.audit);
            let now = shared.clock.now().unix_timestamp();
            match sessions.bind(session, &owner, now).await {
                Ok(Some(bound)) if bound == owner => {}
                Ok(_) => {
                    tracing::warn!(
                        "upstream issued a session id already bound to another key: answer withheld"
                    );
                    return Err(bad_gateway());
                }
                Err(err) => {
                    telemetry::request("unavailable");
                    return Err(unavailable(&err));
                }
            }
        }
        None => {}
    }
    if admitted.ends
        && response.status().is_success()
        && let Some(session) = admitted.session
    {
        end(sessions, session).await;
    }
    Ok(response)
}

/// Whether [`settle`] has nothing to do for `response`: no sessions are
/// bound here, or the answer issues none (or echoes the one it was asked
/// in) and ends none. The common answer, settled without an await.
pub(super) fn nothing_to_settle<R>(
    shared: &Shared,
    admitted: &Admitted,
    response: &Response<R>,
) -> bool {
    if shared.sessions.is_none() {
        return true;
    }
    if admitted.ends {
        return false;
    }
    let mut issued = response.headers().get_all(MCP_SESSION_ID).iter();
    match (issued.next(), issued.next()) {
        (None, _) => true,
        (Some(value), None) => admitted.session == Some(SessionHash::of(value.as_bytes())),
        (Some(_), Some(_)) => false,
    }
}

/// Forgets an ended session. If the store cannot be told, the binding stays
/// (still its owner's alone) until it ages out.
async fn end(sessions: &Sessions, session: SessionHash) {
    if let Err(err) = sessions.end(session).await {
        tracing::warn!(error = %err, "could not forget an ended MCP session");
    }
}

/// `mcp_session_id` and other spellings some servers read as
/// `Mcp-Session-Id` (`_` for `-`, as CGI-style environments fold them) are
/// removed: only the header the layer checked may name a session.
fn scrub_lookalikes(headers: &mut HeaderMap) {
    let is_lookalike = |name: &HeaderName| {
        let name = name.as_str();
        name != MCP_SESSION_ID.as_str()
            && name.len() == MCP_SESSION_ID.as_str().len()
            && name
                .bytes()
                .zip(MCP_SESSION_ID.as_str().bytes())
                .all(|(c, expected)| (if c == b'_' { b'-' } else { c }) == expected)
    };
    if headers.keys().any(is_lookalike) {
        let lookalikes: Vec<HeaderName> = headers
            .keys()
            .filter(|n| is_lookalike(n))
            .cloned()
            .collect();
        for name in lookalikes {
            headers.remove(&name);
        }
    }
}

/// Whether a query names a session, as the deprecated HTTP+SSE transport
/// (2024-11-05) does (`?sessionId=`, `?session_id=`). Such an id is issued
/// inside an event stream, never in a header, so the layer cannot bind it:
/// it is one the layer never saw issued. Names are read as servers decode
/// them: percent-decoded, `+` as space, any case, `_` and `-` ignored, pairs
/// split on `&` or `;`.
fn names_a_session(query: &str) -> bool {
    query
        .split(['&', ';'])
        .any(|pair| is_session_name(pair.split('=').next().unwrap_or_default().as_bytes()))
}

fn is_session_name(name: &[u8]) -> bool {
    const NAME: &[u8] = b"sessionid";
    let mut decoded = Vec::with_capacity(name.len());
    let mut rest = name;
    while let Some((&first, tail)) = rest.split_first() {
        let hex = |c: u8| char::from(c).to_digit(16);
        rest = tail;
        decoded.push(match (first, tail) {
            (b'%', [high, low, after @ ..]) if hex(*high).is_some() && hex(*low).is_some() => {
                rest = after;
                u8::try_from(hex(*high).unwrap_or(0) * 16 + hex(*low).unwrap_or(0)).unwrap_or(0)
            }
            (b'+', _) => b' ',
            (byte, _) => byte,
        });
    }
    decoded
        .iter()
        .filter(|&&c| c != b'_' && c != b'-')
        .map(u8::to_ascii_lowercase)
        .eq(NAME.iter().copied())
}

fn not_found() -> Refused {
    let code = VerifyCode::SessionNotFound;
    let message = "no such MCP session for this key: start a new one";
    Refused::plain(StatusCode::NOT_FOUND, code, code.as_str(), message)
}

/// The answer withheld: its reason is never audited (the call's line is
/// written as a valid call with this status).
fn bad_gateway() -> Refused {
    Refused::plain(
        StatusCode::BAD_GATEWAY,
        VerifyCode::Valid,
        "bad_gateway",
        "the upstream's session could not be bound to this key",
    )
}

fn unavailable(err: &crate::backend::BackendError) -> Refused {
    // Fail closed: no binding read or written, no pass.
    tracing::error!(error = %err, "MCP session bindings unavailable");
    Refused::plain(
        StatusCode::SERVICE_UNAVAILABLE,
        VerifyCode::SessionsUnavailable,
        "unavailable",
        "MCP sessions cannot be checked",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_session_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("mcp-session-id", "mine".parse().expect("value"));
        headers.insert("mcp_session_id", "theirs".parse().expect("value"));
        headers.insert("mcp-session_id", "theirs".parse().expect("value"));
        headers.insert("mcp-session-idx", "kept".parse().expect("value"));
        scrub_lookalikes(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(headers.get(MCP_SESSION_ID).expect("kept"), "mine");
        assert!(headers.contains_key("mcp-session-idx"));
    }

    #[test]
    fn a_session_in_the_query_is_seen_however_spelled() {
        for query in [
            "sessionId=abc",
            "session_id=abc",
            "x=1&SESSION-ID=abc",
            "x=1;sessionid",
            "session%5Fid=abc",
            "%73essionId=abc",
        ] {
            assert!(names_a_session(query), "{query}");
        }
        for query in [
            "",
            "x=sessionId",
            "sessions=1",
            "session=abc",
            "id=1&session",
            "%zzsessionid=1",
        ] {
            assert!(!names_a_session(query), "{query}");
        }
    }
}
