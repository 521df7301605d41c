//! Remote mode (`--verify-url`): keys verified through a Keysmith server's
//! `POST /api/v1/verify` with a verify-scoped management key
//! (`KEYSMITH_VERIFY_KEY`), audit delivered back in batches; no database.

use std::{net::IpAddr, path::PathBuf};

use anyhow::Context;
use keysmith_verify::{RemoteVerifier, Verifier, VerifyCode};

use crate::config::Secret;

/// Where and how a remote gateway verifies keys.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// The server's root, e.g. `https://keys.example`.
    pub url: String,
    /// `KEYSMITH_VERIFY_KEY`; never logged.
    pub key: Secret,
    /// `--verify-ca` / `KEYSMITH_VERIFY_CA_FILE`: PEM roots trusted besides
    /// the Mozilla ones (a private CA).
    pub ca_file: Option<PathBuf>,
    /// `--allow-plain-http`: an `http://` URL to a host that is not loopback.
    pub allow_plain_http: bool,
}

/// The variable the verify key is read from.
pub const VERIFY_KEY_VAR: &str = "KEYSMITH_VERIFY_KEY";

impl RemoteSettings {
    /// Checks the URL (https, or http to loopback unless allowed) and
    /// builds the verifier; nothing is asked of the server yet.
    pub fn verifier(&self) -> anyhow::Result<RemoteVerifier> {
        let url = url::Url::parse(&self.url)
            .with_context(|| format!("--verify-url {} is not a URL", self.url))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            anyhow::bail!(
                "--verify-url takes the server's root, e.g. https://keys.example (no query, fragment or user)"
            );
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_plain_http || is_loopback(&url) => {}
            "http" => anyhow::bail!(
                "--verify-url {} is plain http to another host: {VERIFY_KEY_VAR} and every presented key would cross the network in clear text. Use https:// (a private CA through --verify-ca / KEYSMITH_VERIFY_CA_FILE), or --allow-plain-http on a network you trust",
                self.url
            ),
            other => anyhow::bail!("--verify-url must be https:// (or http://), not {other}://"),
        }
        let roots = match &self.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("failed to read {} (--verify-ca)", path.display()))?,
            ),
            None => None,
        };
        RemoteVerifier::with_roots(&self.url, self.key.expose().to_owned(), roots.as_deref())
            .context("failed to set up TLS for --verify-url (--verify-ca)")
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Asks the server about the gateway's own key: it must be valid, and of
/// the tenant `--tenant` names (the server verifies only that tenant's keys
/// for it, so any other tenant's would all be refused).
pub async fn check_key_tenant(
    verifier: &RemoteVerifier,
    key: &Secret,
    tenant: &str,
) -> anyhow::Result<()> {
    let verdict = verifier
        .verify(key.expose().trim())
        .await
        .with_context(|| {
            format!("failed to check {VERIFY_KEY_VAR} with the server (--verify-url)")
        })?;
    let own = match verdict {
        Ok(own) => own,
        Err(refusal) => anyhow::bail!(
            "the server refuses {VERIFY_KEY_VAR} ({}): create one with `keysmith management-key create --tenant {tenant} --scope verify`",
            refusal.code.as_str()
        ),
    };
    if own.tenant_slug != tenant {
        anyhow::bail!(
            "{VERIFY_KEY_VAR} is a key of tenant `{}`, not of --tenant {tenant}: a remote gateway serves its management key's tenant",
            own.tenant_slug
        );
    }
    if own.has_scope("keysmith:admin") {
        tracing::warn!(
            "{VERIFY_KEY_VAR} has the keysmith:admin scope; a key of scope keysmith:verify is enough (keysmith management-key create --scope verify)"
        );
    }
    debug_assert!(VerifyCode::Valid.as_str() == "valid");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, allow_plain_http: bool) -> RemoteSettings {
        RemoteSettings {
            url: url.to_owned(),
            key: Secret("ks_not_a_real_key".into()),
            ca_file: None,
            allow_plain_http,
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        keysmith_verify::tls::install_default_provider();
        for ok in [
            "https://keys.example",
            "https://keys.example/keysmith/",
            "http://127.0.0.1:8080",
            "http://127.9.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            settings(ok, false)
                .verifier()
                .unwrap_or_else(|err| panic!("{ok}: {err}"));
        }
        for refused in [
            "http://keys.example",
            "http://10.0.0.5:8080",
            "http://127.0.0.1.nip.io",
        ] {
            let err = settings(refused, false)
                .verifier()
                .expect_err(refused)
                .to_string();
            assert!(
                err.contains("--allow-plain-http") && err.contains("https://"),
                "{refused}: {err}"
            );
            settings(refused, true)
                .verifier()
                .expect("allowed by the flag");
        }
        for bad in [
            "ftp://keys.example",
            "https://keys.example/?a=1",
            "https://user@keys.example",
            "keys.example",
        ] {
            assert!(settings(bad, true).verifier().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        let shown = format!("{:?}", settings("https://keys.example", false));
        assert!(!shown.contains("ks_not_a_real_key"), "{shown}");
    }
}
