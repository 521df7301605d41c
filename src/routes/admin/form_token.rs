//! Single-use form tokens for the admin's forms (see `domain::people::form_tokens`).

use super::auth::Admin;
use crate::{domain::people::form_tokens, error::AppError, state::AppState};

pub async fn issue(state: &AppState, admin: &Admin) -> Result<String, AppError> {
    Ok(form_tokens::issue(state.pool(), &admin.user.user_id, state.now()).await?)
}

/// Spends `token`; false if it was never issued, expired or already spent.
pub async fn spend(state: &AppState, admin: &Admin, token: &str) -> Result<bool, AppError> {
    Ok(form_tokens::spend(state.pool(), &admin.user.user_id, token, state.now()).await?)
}
