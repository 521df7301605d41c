//! Single-use form tokens: a create or rotate form can mint a key once. A
//! browser re-POST (reload of the result, back + resubmit) finds its token
//! spent and mints nothing.

use tower_sessions::Session;

use crate::error::AppError;
use keysmith_verify::random_id;

const KEY: &str = "form_tokens";
/// Open forms remembered per session (several tabs); the oldest go first.
const MAX_OPEN: usize = 20;

fn session_error(err: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("session: {err}"))
}

pub async fn issue(session: &Session) -> Result<String, AppError> {
    let mut tokens: Vec<String> = session
        .get(KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    let token = random_id(24);
    tokens.push(token.clone());
    if tokens.len() > MAX_OPEN {
        tokens.remove(0);
    }
    session.insert(KEY, tokens).await.map_err(session_error)?;
    Ok(token)
}

/// Spends `token`; false if it was never issued or already spent.
pub async fn spend(session: &Session, token: &str) -> Result<bool, AppError> {
    let mut tokens: Vec<String> = session
        .get(KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    let Some(position) = tokens.iter().position(|t| t == token) else {
        return Ok(false);
    };
    tokens.remove(position);
    session.insert(KEY, tokens).await.map_err(session_error)?;
    Ok(true)
}
