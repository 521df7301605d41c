//! The key create form: what was typed, checked field by field so a refusal
//! names every problem at once, each beside its field and in the form's words
//! (the domain's checks speak the API's field names).

use serde::Deserialize;
use time::{Date, OffsetDateTime, Time, macros::format_description};

use super::{limits_form::LimitsForm, service_user_picker};
use crate::{
    domain::{
        Name,
        keys::{self, ExpiryRequest, NewKey},
        tenants::Tenant,
    },
    error::AppError,
    state::AppState,
};

/// What was typed; kept whole so a refused form is shown again as it was.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub form_token: String,
    #[serde(default)]
    pub tenant: String,
    /// From the drop-down; or `service_user`, a name typed where a tenant
    /// has too many to list.
    #[serde(default)]
    pub service_user_id: String,
    #[serde(default)]
    pub service_user: String,
    #[serde(default)]
    pub name: String,
    /// Days (a preset) or empty when `expires_on` is used.
    #[serde(default)]
    pub expires_in_days: String,
    #[serde(default)]
    pub expires_on: String,
    #[serde(default)]
    pub allowed_tools: String,
    #[serde(default)]
    pub allowed_resources: String,
    #[serde(default)]
    pub allowed_prompts: String,
    #[serde(flatten)]
    pub limits: LimitsForm,
}

/// Each field's problem, if any; `general` for what belongs to no one field
/// (the tenant's key cap).
#[derive(Debug, Default)]
pub struct KeyFormErrors {
    pub service_user: Option<String>,
    pub name: Option<String>,
    pub expiry: Option<String>,
    pub tools: Option<String>,
    pub resources: Option<String>,
    pub prompts: Option<String>,
    pub limits: Option<String>,
    pub general: Option<String>,
}

impl KeyFormErrors {
    pub fn count(&self) -> usize {
        [
            &self.service_user,
            &self.name,
            &self.expiry,
            &self.tools,
            &self.resources,
            &self.prompts,
            &self.limits,
            &self.general,
        ]
        .iter()
        .filter(|e| e.is_some())
        .count()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// A refusal of the whole create (after every field passed), placed
    /// beside the field it is about.
    pub fn from_refusal(err: &AppError) -> Self {
        let message = in_words_of_the_form(&err.to_string());
        match err {
            AppError::NotFound(_) => Self {
                service_user: Some("That service user is not in this tenant".into()),
                ..Self::default()
            },
            _ if message.contains("expir") => Self {
                expiry: Some(message),
                ..Self::default()
            },
            _ => Self {
                general: Some(message),
                ..Self::default()
            },
        }
    }
}

/// The API's field names as the form's labels call them.
const FIELD_LABELS: [(&str, &str); 7] = [
    ("expires_in_days", "“Expires in”"),
    ("expires_at", "the expiry date"),
    ("allowed_tools: ", ""),
    ("allowed_resources: ", ""),
    ("allowed_prompts: ", ""),
    ("limits: ", ""),
    ("owner_email", "the owner email"),
];

pub fn in_words_of_the_form(message: &str) -> String {
    let message = FIELD_LABELS
        .iter()
        .fold(message.to_owned(), |message, (field, label)| {
            message.replace(field, label)
        });
    capitalised(&message)
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// One field's outcome: its value, or its problem in the form's words.
fn field<T>(result: Result<T, AppError>, error: &mut Option<String>) -> Option<T> {
    result
        .map_err(|err| *error = Some(in_words_of_the_form(&err.to_string())))
        .ok()
}

fn expiry(form: &KeyForm, tenant: &Tenant, now: OffsetDateTime) -> Result<ExpiryRequest, AppError> {
    let request = if form.expires_on.trim().is_empty() {
        match form.expires_in_days.trim() {
            "" => ExpiryRequest::TenantDefault,
            days => days
                .parse()
                .map(ExpiryRequest::InDays)
                .map_err(|_| AppError::validation("choose how long the key lasts"))?,
        }
    } else {
        let date = Date::parse(
            form.expires_on.trim(),
            format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| AppError::validation("the expiry date must look like 2027-01-31"))?;
        ExpiryRequest::At(OffsetDateTime::new_utc(date, Time::MIDNIGHT))
    };
    // Checked against the policy here to name the field; `keys::create`
    // checks it again (the policy may change in between).
    keys::resolve_expiry(tenant, request, now)?;
    Ok(request)
}

/// A comma- or line-separated allowlist field; `None` when empty (not named).
fn entries(raw: &str) -> Option<Vec<String>> {
    let list: Vec<String> = raw
        .split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

type Lists<'a> = (
    Option<&'a [String]>,
    Option<&'a [String]>,
    Option<&'a [String]>,
);

/// One allowlist field checked alone (`place` puts it among the three);
/// a refusal names the first entry that is wrong.
fn allowlist(
    list: &Option<Vec<String>>,
    place: impl Fn(Option<&[String]>) -> Lists<'_>,
) -> Result<(), AppError> {
    let check = |entries: &[String]| {
        let (tools, resources, prompts) = place(Some(entries));
        keys::capabilities(tools, resources, prompts).map(|_| ())
    };
    let Some(list) = list else { return Ok(()) };
    check(list).map_err(|err| {
        let wrong = list
            .iter()
            .find(|entry| check(std::slice::from_ref(entry)).is_err());
        match wrong {
            Some(entry) => AppError::validation(format!("`{entry}`: {err}")),
            None => err,
        }
    })
}

/// Every field checked, so all problems are reported together.
pub async fn check(
    state: &AppState,
    tenant: &Tenant,
    form: &KeyForm,
) -> Result<NewKey, KeyFormErrors> {
    let mut errors = KeyFormErrors::default();
    let chosen =
        service_user_picker::chosen(state, &tenant.id, &form.service_user_id, &form.service_user)
            .await
            .and_then(|id| id.ok_or_else(|| AppError::validation("choose a service user")));
    let service_user_id = field(chosen, &mut errors.service_user);
    let name = field(Name::parse("the name", &form.name), &mut errors.name);
    let expiry = field(expiry(form, tenant, state.now()), &mut errors.expiry);
    let [tools, resources, prompts] = [
        &form.allowed_tools,
        &form.allowed_resources,
        &form.allowed_prompts,
    ]
    .map(|raw| entries(raw));
    // Each list alone, to say which one is wrong, and which entry.
    field(allowlist(&tools, |l| (l, None, None)), &mut errors.tools);
    field(
        allowlist(&resources, |l| (None, l, None)),
        &mut errors.resources,
    );
    field(
        allowlist(&prompts, |l| (None, None, l)),
        &mut errors.prompts,
    );
    let allowed = keys::capabilities(tools.as_deref(), resources.as_deref(), prompts.as_deref());
    let limits = field(form.limits.parse(), &mut errors.limits);
    match (service_user_id, name, expiry, allowed, limits) {
        (Some(service_user_id), Some(name), Some(expiry), Ok(allowed), Some(limits))
            if errors.is_empty() =>
        {
            Ok(NewKey {
                service_user_id,
                name,
                expiry,
                allowed,
                scopes: Vec::new(),
                limits,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_field_names_become_the_form_s_words() {
        assert_eq!(
            in_words_of_the_form("expires_in_days must be between 1 and 90 (the tenant maximum)"),
            "“Expires in” must be between 1 and 90 (the tenant maximum)"
        );
        assert_eq!(
            in_words_of_the_form("expires_at must be in the future"),
            "The expiry date must be in the future"
        );
        let tools = in_words_of_the_form("allowed_tools: bad pattern `a b`");
        assert!(!tools.contains("allowed_tools"), "{tools}");
        assert_eq!(
            capitalised("the name must not be empty"),
            "The name must not be empty"
        );
    }

    #[test]
    fn entries_are_split_on_commas_and_lines() {
        assert_eq!(
            entries(" a, b\n c ,,"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(entries(" , \n"), None);
    }
}
