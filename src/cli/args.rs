//! Arguments several command groups share, parsed at the edge: the tenant
//! a command acts in, `--json`, ids and expiry dates. A bad value is refused
//! here, before anything is read or written.

use anyhow::bail;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::tenants::by_slug;
use crate::{
    domain::{KeyId, ServiceUserId, keys::ExpiryRequest, tenants::Tenant},
    state::AppState,
};

/// The tenant a command acts in, and how it prints its answer.
#[derive(Debug, clap::Args)]
pub struct InTenant {
    /// The tenant's slug. Every id given must be of this tenant: another
    /// tenant's is "not found".
    #[arg(long)]
    pub tenant: String,
    /// Print the JSON API's answer (the same shape as `/api/v1`) instead
    /// of a table.
    #[arg(long)]
    pub json: bool,
}

impl InTenant {
    pub async fn load(&self, state: &AppState) -> anyhow::Result<Tenant> {
        by_slug(state, &self.tenant).await
    }
}

/// Ids of keys and service users: 16 letters and digits.
const ID_LEN: usize = 16;

/// `raw` as an id of `what`, or a message saying what an id looks like. A
/// whole key given by mistake is never echoed back: it may be a live secret.
fn parse_id(what: &str, raw: &str) -> anyhow::Result<String> {
    let raw = raw.trim();
    if raw.len() == ID_LEN && raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(raw.to_owned());
    }
    if raw.contains('_') && raw.len() > ID_LEN {
        bail!(
            "that looks like a whole key, not a {what} id (it is not printed here): give the {ID_LEN}-character id that `keysmith key list` shows"
        );
    }
    bail!("{raw:?} is not a {what} id: an id is {ID_LEN} letters and digits")
}

pub fn key_id(raw: &str) -> anyhow::Result<KeyId> {
    parse_id("key", raw).map(KeyId::new)
}

pub fn service_user_id(raw: &str) -> anyhow::Result<ServiceUserId> {
    parse_id("service user", raw).map(ServiceUserId::new)
}

/// A key's expiry as `--expires-in-days` and `--expires-at` give it (clap
/// lets only one through); neither: `None`.
#[derive(Debug, clap::Args)]
pub struct Expiry {
    /// Days the key works, from now (at most the tenant's maximum).
    #[arg(long, conflicts_with = "expires_at")]
    pub expires_in_days: Option<i64>,
    /// When the key stops working: a date (2027-03-01, midnight UTC) or an
    /// RFC 3339 time (2027-03-01T12:00:00Z).
    #[arg(long)]
    pub expires_at: Option<String>,
}

impl Expiry {
    pub fn request(&self) -> anyhow::Result<Option<ExpiryRequest>> {
        match (&self.expires_at, self.expires_in_days) {
            (Some(at), _) => Ok(Some(ExpiryRequest::At(parse_moment(at)?))),
            (None, Some(days)) => Ok(Some(ExpiryRequest::InDays(days))),
            (None, None) => Ok(None),
        }
    }
}

fn parse_moment(raw: &str) -> anyhow::Result<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(at);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(raw, &date_format) {
        Ok(date) => Ok(date.midnight().assume_utc()),
        Err(_) => bail!(
            "--expires-at {raw:?} is neither a date (2027-03-01) nor an RFC 3339 time (2027-03-01T12:00:00Z)"
        ),
    }
}

/// The domain's messages name the API's fields; on the command line the
/// same rule is about the flags.
pub fn in_flag_words(err: crate::error::AppError) -> anyhow::Error {
    match err {
        crate::error::AppError::Validation(message) => anyhow::anyhow!(
            "{}",
            message
                .replace("expires_in_days", "--expires-in-days")
                .replace("expires_at", "--expires-at")
                .replace("allowed_tools", "--tool")
                .replace("allowed_resources", "--resource")
                .replace("allowed_prompts", "--prompt")
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_letters_and_digits_and_keys_are_never_echoed() {
        assert_eq!(
            key_id(" AbCdEfGh12345678 ").expect("id").as_str(),
            "AbCdEfGh12345678"
        );
        for bad in ["", "short", "AbCdEfGh1234567!", "AbCdEfGh123456789", "a b"] {
            let err = key_id(bad).expect_err(bad).to_string();
            assert!(err.contains("is not a key id"), "{bad}: {err}");
        }
        let key = "acme_AbCdEfGh12345678_s3cretS3cretS3cretS3cret1234";
        let err = service_user_id(key).expect_err("a key").to_string();
        assert!(
            err.contains("looks like a whole key") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn an_expiry_is_a_date_a_time_or_a_number_of_days() {
        let at = |raw: &str| {
            Expiry {
                expires_in_days: None,
                expires_at: Some(raw.into()),
            }
            .request()
        };
        assert!(matches!(
            at("2027-03-01").expect("date"),
            Some(ExpiryRequest::At(t)) if t.unix_timestamp() == 1_803_859_200
        ));
        assert!(matches!(
            at("2027-03-01T12:00:00+01:00").expect("time"),
            Some(ExpiryRequest::At(t)) if t.unix_timestamp() == 1_803_898_800
        ));
        for bad in ["tomorrow", "2027-02-30", "01/03/2027"] {
            let err = at(bad).expect_err(bad).to_string();
            assert!(err.contains("--expires-at"), "{bad}: {err}");
        }
    }
}
