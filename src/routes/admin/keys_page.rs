//! `/admin/api-keys`: the tenant's keys, filtered and paginated.

use crate::domain::ServiceUserId;
use crate::domain::UnixTime;
use askama::Template;
use axum::{
    extract::{Query, State},
    response::Response,
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    key_form::{KeyForm, KeyFormErrors},
    nav::{Nav, Section},
    page::{PageError, render, when},
    service_user_picker::{self, Picker},
};
use crate::{
    domain::{
        keys::{self, KeyFilter, KeyState},
        service_users,
    },
    error::AppError,
    state::AppState,
};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
    status: Option<String>,
    service_user_id: Option<String>,
    /// A service user's exact name, typed where there are too many to list.
    service_user: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    /// The tenant's first page, unfiltered.
    pub fn of_tenant(slug: &str) -> Self {
        Self {
            tenant: Some(slug.to_owned()),
            ..Self::default()
        }
    }
}

/// A refused create: the form as it was typed, and what is wrong with it.
pub struct Retry {
    pub form: KeyForm,
    pub errors: KeyFormErrors,
}

pub struct KeyLine {
    pub id: String,
    pub name: String,
    pub service_user: String,
    pub status: &'static str,
    pub hint: String,
    pub expires: String,
    /// For a rotating key: until when it works, and how long that is.
    pub cutoff: Option<String>,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage<'a> {
    nav: Nav,
    admin: &'a Admin,
    current: &'a Membership,
    keys: Vec<KeyLine>,
    /// The service users the filter and the create form offer.
    picker: Picker,
    /// Whether the tenant has any service user (keys belong to one).
    any_service_user: bool,
    status: &'a str,
    service_user_id: &'a str,
    /// The filtered service user's name, shown in the text field.
    service_user_name: String,
    next_cursor: Option<String>,
    can_manage: bool,
    create_token: String,
    min_date: String,
    max_date: String,
    /// Expiry choices the tenant's policy allows, each with whether it is chosen.
    presets: Vec<(i64, bool)>,
    /// The create form's values: empty, or as typed when refused.
    form: KeyForm,
    errors: KeyFormErrors,
}

/// The usual lifetimes that fit under the tenant's maximum, then the
/// maximum itself when it is not one of them.
fn presets(max_days: i64) -> Vec<i64> {
    let mut days: Vec<i64> = [30, 90, 180, 365]
        .into_iter()
        .filter(|d| *d <= max_days)
        .collect();
    if !days.contains(&max_days) {
        days.push(max_days);
    }
    days
}

/// The longest preset within the tenant's default, or the shortest.
fn preselected(presets: &[i64], default_days: i64) -> i64 {
    presets
        .iter()
        .copied()
        .filter(|d| *d <= default_days)
        .max()
        .or_else(|| presets.first().copied())
        .unwrap_or(default_days)
}

fn left(seconds: i64) -> String {
    match seconds {
        s if s <= 0 => "ended".into(),
        s if s < 3600 => format!("{} min left", s / 60),
        s if s < 2 * 86_400 => format!("{} h left", s / 3600),
        s => format!("{} days left", s / 86_400),
    }
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    page(&state, &admin, query, None).await
}

/// The list and its create form; `retry` shows a refused create again, with
/// a fresh form token (the refused one was spent).
pub async fn page(
    state: &AppState,
    admin: &Admin,
    query: ListQuery,
    retry: Option<Retry>,
) -> Result<Response, PageError> {
    let (current, memberships) = match admin.tenant(state, query.tenant.as_deref()).await {
        Ok(found) => found,
        // Only an admin with no tenant at all ends up here without asking for one.
        Err(err) if query.tenant.is_none() => {
            return admin.without_tenant(state).await?.ok_or(err);
        }
        Err(err) => return Err(err),
    };
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            serde_json::from_value::<KeyState>(serde_json::Value::String(raw.to_owned()))
                .map_err(|_| PageError(AppError::validation("unknown status filter")))?,
        ),
    };
    let su_filter = service_user_picker::chosen(
        state,
        &current.tenant.id,
        query.service_user_id.as_deref().unwrap_or_default(),
        query.service_user.as_deref().unwrap_or_default(),
    )
    .await?
    .map(|id| id.to_string());
    let filter = KeyFilter {
        status,
        service_user_id: su_filter.clone().map(ServiceUserId::new),
    };
    let now = state.now();
    let page = keys::list(
        state.pool(),
        &current.tenant.id,
        &filter,
        query.cursor.as_deref().filter(|c| !c.is_empty()),
        50,
        now,
    )
    .await?;
    // Only the names this page shows, never every service user of the tenant.
    let mut shown: Vec<ServiceUserId> = page
        .items
        .iter()
        .map(|k| k.service_user_id.clone())
        .chain(filter.service_user_id.clone())
        .collect();
    shown.sort_unstable();
    shown.dedup();
    let owners = service_users::names_of(state.pool(), &current.tenant.id, &shown).await?;
    let name_of = |id: &ServiceUserId| {
        owners
            .iter()
            .find(|(owner, _)| owner == id)
            .map_or_else(|| id.to_string(), |(_, name)| name.clone())
    };
    let service_user_name = filter
        .service_user_id
        .as_ref()
        .map(name_of)
        .unwrap_or_default();
    let picker = Picker::load(state, &current.tenant.id).await?;
    let now_unix = UnixTime::from(now);
    let lines = page
        .items
        .iter()
        .map(|k| {
            let status = k.status_at(now);
            KeyLine {
                id: k.id.to_string(),
                name: k.name.clone(),
                service_user: name_of(&k.service_user_id),
                status: status.as_str(),
                hint: k.hint.clone(),
                expires: when(k.expires_at),
                cutoff: (status == KeyState::Rotating)
                    .then(|| {
                        k.cutoff_at.map(|c| {
                            format!("{} ({})", when(c), left((c - now_unix).whole_seconds()))
                        })
                    })
                    .flatten(),
                last_used: k.last_used_at.map_or_else(|| "never".to_owned(), when),
            }
        })
        .collect();
    let can_manage = current.role.can_manage_keys();
    let create_token = if can_manage {
        super::form_token::issue(state, admin).await?
    } else {
        String::new()
    };
    let presets = presets(current.tenant.max_expiry_days);
    let (form, errors) = match retry {
        Some(retry) => (retry.form, retry.errors),
        None => {
            let preset = preselected(&presets, current.tenant.default_expiry_days);
            let form = KeyForm {
                service_user_id: su_filter.clone().unwrap_or_default(),
                service_user: service_user_name.clone(),
                expires_in_days: preset.to_string(),
                ..KeyForm::default()
            };
            (form, KeyFormErrors::default())
        }
    };
    let presets = presets
        .into_iter()
        .map(|days| (days, form.expires_in_days.trim() == days.to_string()))
        .collect();
    let nav = Nav::of_tenant(state, admin, Section::Keys, &current, &memberships).await?;
    let date = |at: time::OffsetDateTime| UnixTime::from(at).date();
    Ok(render(&KeysPage {
        admin,
        can_manage,
        create_token,
        min_date: date(now + time::Duration::days(1)),
        max_date: date(now + time::Duration::days(current.tenant.max_expiry_days)),
        nav,
        presets,
        form,
        errors,
        current: &current,
        keys: lines,
        any_service_user: !picker.choices.is_empty(),
        picker,
        status: query.status.as_deref().unwrap_or(""),
        service_user_id: su_filter.as_deref().unwrap_or(""),
        service_user_name,
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_tenant_maximum() {
        assert_eq!(presets(365), [30, 90, 180, 365]);
        assert_eq!(presets(3650), [30, 90, 180, 365, 3650]);
        assert_eq!(presets(120), [30, 90, 120]);
        assert_eq!(presets(14), [14]);
        assert_eq!(preselected(&presets(365), 90), 90);
        assert_eq!(preselected(&presets(120), 100), 90);
        assert_eq!(preselected(&presets(14), 7), 14);
    }
}
