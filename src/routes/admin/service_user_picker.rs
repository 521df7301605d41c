//! Choosing a service user on a form without reading them all: a drop-down
//! while a tenant has few, else a text field that suggests the first names
//! (`<datalist>`) and is resolved by exact name on the server.

use crate::{
    domain::{ServiceUserId, TenantId, tenancy::service_users},
    error::AppError,
    state::AppState,
};

/// A drop-down holds at most this many service users; past it, the name is typed.
pub const DROPDOWN_MAX: i64 = 100;

/// What a form offers: `(id, name)` by name, at most [`DROPDOWN_MAX`].
pub struct Picker {
    pub choices: Vec<(String, String)>,
    /// More service users than the choices: the form asks for a name
    /// (`service_user`) and offers the choices as suggestions.
    pub by_name: bool,
}

impl Picker {
    pub async fn load(state: &AppState, tenant_id: &TenantId) -> Result<Self, AppError> {
        let mut choices =
            service_users::first_names(state.pool(), tenant_id, DROPDOWN_MAX + 1).await?;
        let by_name = choices.len() > usize::try_from(DROPDOWN_MAX).unwrap_or(usize::MAX);
        choices.truncate(usize::try_from(DROPDOWN_MAX).unwrap_or(usize::MAX));
        Ok(Self {
            choices: choices
                .into_iter()
                .map(|(id, name)| (id.to_string(), name))
                .collect(),
            by_name,
        })
    }
}

/// The service user a form names: by id (the drop-down, links) or by exact
/// name (the text field); `None` when neither is given. An unknown name is
/// refused with the name in the message; an id is checked where it is used.
pub async fn chosen(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    name: &str,
) -> Result<Option<ServiceUserId>, AppError> {
    if !id.trim().is_empty() {
        return Ok(Some(ServiceUserId::new(id.trim())));
    }
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    match service_users::find_by_name(state.pool(), tenant_id, name).await? {
        Some(user) => Ok(Some(user.id)),
        None => Err(AppError::validation(format!(
            "there is no service user named `{name}`"
        ))),
    }
}
