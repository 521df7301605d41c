//! `/admin/policy`: a tenant's key policy (expiry bounds, rotation overlap,
//! prefix of new keys, default limits, OAuth lifetimes and whether clients
//! may register themselves). Owners and admins change it; viewers read it.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::{Admin, Membership},
    limits_form::LimitsForm,
    nav::{Nav, Section},
    page::{PageError, render},
};
use crate::{
    domain::tenancy::tenants::{self, MAX_EXPIRY_DAYS, OVERLAP_DAYS, PolicyChange},
    error::AppError,
    state::AppState,
};
use keysmith_verify::KeyPrefix;

#[derive(Debug, Deserialize)]
pub struct PolicyQuery {
    tenant: Option<String>,
    /// Set after a change was saved, to say so.
    saved: Option<String>,
}

/// What was typed, shown again as it was when the change is refused.
#[derive(Debug, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    default_expiry_days: String,
    #[serde(default)]
    max_expiry_days: String,
    #[serde(default)]
    rotation_overlap_days: String,
    #[serde(default)]
    key_prefix: String,
    #[serde(default)]
    oauth_access_token_minutes: String,
    #[serde(default)]
    oauth_refresh_idle_days: String,
    #[serde(default)]
    oauth_refresh_absolute_days: String,
    /// Dynamic registration: `open` or `closed` (empty: kept as it is).
    #[serde(default)]
    oauth_registration: String,
    /// Metadata-document clients: `accepted` or `refused` (empty: kept).
    #[serde(default)]
    oauth_metadata_documents: String,
    /// Default limits of new keys that set none.
    #[serde(flatten)]
    limits: LimitsForm,
}

impl PolicyForm {
    fn of(membership: &Membership) -> Self {
        let t = &membership.tenant;
        Self {
            tenant: t.slug.clone(),
            default_expiry_days: t.default_expiry_days.to_string(),
            max_expiry_days: t.max_expiry_days.to_string(),
            rotation_overlap_days: t.rotation_overlap_days.to_string(),
            key_prefix: t.key_prefix.clone(),
            oauth_access_token_minutes: t.oauth_access_token_minutes.to_string(),
            oauth_refresh_idle_days: t.oauth_refresh_idle_days.to_string(),
            oauth_refresh_absolute_days: t.oauth_refresh_absolute_days.to_string(),
            oauth_registration: REGISTRATION.shown(t.registration_open()),
            oauth_metadata_documents: DOCUMENTS.shown(t.accepts_metadata_documents()),
            limits: LimitsForm::of(&t.default_limits()),
            ..Self::default()
        }
    }
}

#[derive(Template)]
#[template(path = "admin/policy.html")]
struct PolicyPage<'a> {
    nav: Nav,
    current: &'a Membership,
    csrf: &'a str,
    can_manage: bool,
    form: &'a PolicyForm,
    error: Option<String>,
    saved: bool,
    max_days: i64,
    overlap_min: i64,
    overlap_max: i64,
    limits: &'a LimitsForm,
    limits_legend: &'static str,
    limits_id: &'static str,
}

pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<PolicyQuery>,
) -> Result<Response, PageError> {
    let (current, memberships) = match admin.tenant(&state, query.tenant.as_deref()).await {
        Ok(found) => found,
        // Only an admin with no tenant at all ends up here without asking for one.
        Err(err) if query.tenant.is_none() => {
            return admin.without_tenant(&state).await?.ok_or(err);
        }
        Err(err) => return Err(err),
    };
    let form = PolicyForm::of(&current);
    let saved = query.saved.is_some();
    page(&state, &admin, (&current, &memberships), &form, None, saved).await
}

async fn page(
    state: &AppState,
    admin: &Admin,
    (current, memberships): (&Membership, &[Membership]),
    form: &PolicyForm,
    error: Option<String>,
    saved: bool,
) -> Result<Response, PageError> {
    let nav = Nav::of_tenant(state, admin, Section::Policy, current, memberships).await?;
    Ok(render(&PolicyPage {
        nav,
        current,
        csrf: &admin.user.csrf,
        can_manage: current.role.can_manage_keys(),
        form,
        error,
        saved,
        max_days: MAX_EXPIRY_DAYS,
        overlap_min: *OVERLAP_DAYS.start(),
        overlap_max: *OVERLAP_DAYS.end(),
        limits: &form.limits,
        limits_legend: "Default limits of new keys that set none (empty: none)",
        limits_id: "default",
    }))
}

fn days(field: &str, raw: &str) -> Result<i64, AppError> {
    whole(field, raw, "days")
}

fn whole(field: &str, raw: &str, unit: &str) -> Result<i64, AppError> {
    raw.trim()
        .parse()
        .map_err(|_| AppError::validation(format!("{field} must be a whole number of {unit}")))
}

/// An OAuth field of the form: left empty (an older form), it is kept.
fn optional(field: &str, raw: &str, unit: &str) -> Result<Option<i64>, AppError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    whole(field, raw, unit).map(Some)
}

/// An on/off setting of the form, as its two words.
struct Switch {
    on: &'static str,
    off: &'static str,
    refusal: &'static str,
}

const REGISTRATION: Switch = Switch {
    on: "open",
    off: "closed",
    refusal: "dynamic registration is either open or closed",
};
const DOCUMENTS: Switch = Switch {
    on: "accepted",
    off: "refused",
    refusal: "metadata-document clients are either accepted or refused",
};

impl Switch {
    fn shown(&self, on: bool) -> String {
        (if on { self.on } else { self.off }).to_owned()
    }

    /// The setting as chosen; left empty (an older form), it is kept.
    fn parse(&self, raw: &str) -> Result<Option<bool>, AppError> {
        match raw {
            "" => Ok(None),
            _ if raw == self.on => Ok(Some(true)),
            _ if raw == self.off => Ok(Some(false)),
            _ => Err(AppError::validation(self.refusal)),
        }
    }
}

/// The whole policy as typed; bounds are checked by `tenants::update_policy`.
fn parse(form: &PolicyForm) -> Result<PolicyChange, AppError> {
    let limits = form.limits.parse()?;
    Ok(PolicyChange {
        default_expiry_days: Some(days("default expiry", &form.default_expiry_days)?),
        max_expiry_days: Some(days("maximum expiry", &form.max_expiry_days)?),
        rotation_overlap_days: Some(days("rotation overlap", &form.rotation_overlap_days)?),
        key_prefix: Some(KeyPrefix::parse(form.key_prefix.trim()).map_err(|_| {
            AppError::validation(
                "a key prefix is 2 to 16 lower-case letters or digits, starting with a letter",
            )
        })?),
        default_rate_limit: Some(limits.rate_limit),
        default_quota: Some(limits.quota),
        oauth_access_token_minutes: optional(
            "OAuth access-token lifetime",
            &form.oauth_access_token_minutes,
            "minutes",
        )?,
        oauth_refresh_idle_days: optional(
            "OAuth refresh idle lifetime",
            &form.oauth_refresh_idle_days,
            "days",
        )?,
        oauth_refresh_absolute_days: optional(
            "OAuth refresh absolute lifetime",
            &form.oauth_refresh_absolute_days,
            "days",
        )?,
        oauth_registration_open: REGISTRATION.parse(&form.oauth_registration)?,
        oauth_metadata_documents: DOCUMENTS.parse(&form.oauth_metadata_documents)?,
    })
}

pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<PolicyForm>,
) -> Result<Response, PageError> {
    let membership = admin
        .manager_of(
            &state,
            &headers,
            &form.csrf,
            &form.tenant,
            "viewers can see the key policy but not change it",
        )
        .await?;
    let changed = match parse(&form) {
        Ok(change) => tenants::update_policy(
            state.pool(),
            &membership.tenant.id,
            change,
            &admin.actor(),
            state.now(),
        )
        .await
        .map_err(AppError::from),
        Err(err) => Err(err),
    };
    match changed {
        Ok(_) => Ok(Redirect::to(&format!(
            "/admin/policy?tenant={}&saved=1",
            membership.tenant.slug
        ))
        .into_response()),
        // Refused: the same form again, with the reason and what was typed.
        Err(err @ AppError::Validation(_)) => {
            let status = err.status();
            let (_, memberships) = admin.tenant(&state, Some(&form.tenant)).await?;
            let shown = (&membership, memberships.as_slice());
            let reason = in_words_of_the_form(&err.to_string());
            let page = page(&state, &admin, shown, &form, Some(reason), false).await?;
            Ok((status, page).into_response())
        }
        Err(err) => Err(PageError(err)),
    }
}

/// The API's field names in a refusal, as the form's labels call them: the
/// domain's checks speak the API's language, the person reads the form's.
const FIELD_LABELS: [(&str, &str); 9] = [
    ("default_expiry_days", "“Default expiry”"),
    ("max_expiry_days", "“Maximum expiry”"),
    ("rotation_overlap_days", "“Rotation overlap”"),
    ("key_prefix", "“Prefix of new keys”"),
    ("default_rate_limit", "“Tool calls per minute”"),
    ("default_quota", "“Quota”"),
    ("oauth_access_token_minutes", "“Access-token lifetime”"),
    ("oauth_refresh_idle_days", "“Refresh idle days”"),
    ("oauth_refresh_absolute_days", "“Absolute lifetime”"),
];

fn in_words_of_the_form(message: &str) -> String {
    FIELD_LABELS
        .iter()
        .fold(message.to_owned(), |message, (field, label)| {
            message.replace(field, label)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(default: &str, max: &str, overlap: &str, prefix: &str) -> PolicyForm {
        PolicyForm {
            default_expiry_days: default.into(),
            max_expiry_days: max.into(),
            rotation_overlap_days: overlap.into(),
            key_prefix: prefix.into(),
            ..PolicyForm::default()
        }
    }

    #[test]
    fn numbers_and_prefix_are_parsed_at_the_edge() {
        let change = parse(&form(" 30", "180 ", "7", "acme")).expect("valid");
        assert_eq!(change.default_expiry_days, Some(30));
        assert_eq!(change.max_expiry_days, Some(180));
        assert_eq!(change.rotation_overlap_days, Some(7));
        assert_eq!(
            change.key_prefix.as_ref().map(KeyPrefix::as_str),
            Some("acme")
        );
        let err = parse(&form("thirty", "180", "7", "acme")).expect_err("refused");
        assert!(
            err.to_string()
                .contains("default expiry must be a whole number")
        );
        let err = parse(&form("30", "180", "7", "Bad_Prefix")).expect_err("refused");
        assert!(err.to_string().contains("key prefix"));
    }
}
