//! The TOTP secret: generated, checked against codes, sealed for its account
//! under the pepper; and the stored form of recovery codes.

use time::OffsetDateTime;
use totp_rs::{Builder, Secret, Totp};

use crate::domain::{
    AdminId,
    crypto::sealed::{self, Purpose},
    error::{DomainError, DomainResult},
};
use keysmith_verify::Peppers;

const SECRET_BYTES: usize = 20;

/// A TOTP secret in clear, only in memory. `Debug` hides it.
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    pub(super) fn generate() -> DomainResult<Self> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| DomainError::Internal(anyhow::anyhow!("random: {e}")))?;
        Ok(Self(bytes))
    }

    fn totp(&self) -> DomainResult<Totp> {
        Builder::new()
            .with_secret(Secret::from(self.0.clone()))
            .with_skew(1)
            .build()
            .map_err(|e| DomainError::Internal(anyhow::anyhow!("totp: {e}")))
    }

    /// What people type into an authenticator app.
    pub fn base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    /// The `otpauth://` URI an authenticator app reads from the QR code.
    pub fn uri(&self, email: &str) -> String {
        let label: String =
            url::form_urlencoded::byte_serialize(format!("Keysmith:{email}").as_bytes()).collect();
        format!(
            "otpauth://totp/{label}?secret={}&issuer=Keysmith&algorithm=SHA1&digits=6&period=30",
            self.base32()
        )
    }

    /// The step `code` is valid for at `now` (± one step), if any.
    pub(super) fn matching_step(
        &self,
        code: &str,
        now: OffsetDateTime,
    ) -> DomainResult<Option<i64>> {
        let time = u64::try_from(now.unix_timestamp()).unwrap_or_default();
        Ok(self
            .totp()?
            .check(code.trim(), time)
            .and_then(|s| i64::try_from(s).ok()))
    }

    /// The current code (tests and tools).
    pub fn code_at(&self, now: OffsetDateTime) -> DomainResult<String> {
        let time = u64::try_from(now.unix_timestamp()).unwrap_or_default();
        Ok(self.totp()?.generate(time).to_string())
    }

    pub fn from_base32(text: &str) -> Option<Self> {
        Secret::try_from_base32(text).ok().map(|s| Self(s.to_vec()))
    }
}

/// Sealed for this account (see [`sealed`]): a copy moved to another row
/// does not open.
pub(super) fn seal(
    peppers: &Peppers,
    user_id: &AdminId,
    secret: &TotpSecret,
) -> DomainResult<String> {
    sealed::seal(peppers, Purpose::TotpSecret, user_id.as_str(), &secret.0)
}

pub(super) fn open(peppers: &Peppers, user_id: &AdminId, sealed: &str) -> DomainResult<TotpSecret> {
    Ok(TotpSecret(sealed::open(
        peppers,
        Purpose::TotpSecret,
        user_id.as_str(),
        sealed,
    )?))
}

/// The stored form of a recovery code under pepper `version` (`None` if that
/// version is not loaded).
pub(super) fn recovery_hash(
    peppers: &Peppers,
    version: i64,
    user_id: &AdminId,
    code: &str,
) -> Option<String> {
    let digest = peppers.digest(
        version,
        format!("keysmith recovery code v1\0{user_id}\0{}", code.trim()).as_bytes(),
    )?;
    Some(format!("v{version}:{}", hex::encode(digest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_account_and_hide_in_debug() {
        let peppers = Peppers::parse(&Peppers::fresh_file_text().expect("pepper")).expect("parse");
        let secret = TotpSecret::generate().expect("secret");
        let sealed = seal(&peppers, &AdminId::new("u1"), &secret).expect("seal");
        assert!(!sealed.contains(&hex::encode(&secret.0)));
        assert_eq!(
            open(&peppers, &AdminId::new("u1"), &sealed)
                .expect("open")
                .0,
            secret.0
        );
        assert!(open(&peppers, &AdminId::new("u2"), &sealed).is_err());
        assert!(!format!("{secret:?}").contains(&secret.base32()));
    }

    #[test]
    fn codes_match_their_step_with_one_step_of_skew() {
        let secret = TotpSecret::generate().expect("secret");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let code = secret.code_at(now).expect("code");
        let step = 1_800_000_000 / 30;
        assert_eq!(secret.matching_step(&code, now).expect("check"), Some(step));
        assert!(
            secret
                .matching_step(&code, now + time::Duration::seconds(30))
                .expect("check")
                .is_some()
        );
        assert!(
            secret
                .matching_step(&code, now + time::Duration::seconds(90))
                .expect("check")
                .is_none()
        );
        assert!(
            secret
                .uri("a@b.test")
                .starts_with("otpauth://totp/Keysmith%3Aa%40b.test?secret=")
        );
    }
}
