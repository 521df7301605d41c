//! Outgoing HTTP for the remote verifier and the gateway: rustls on `ring`,
//! the Mozilla root store plus any root the operator configures (a private
//! CA, a self-signed test certificate), and no redirects followed — a
//! redirect would carry the management key or the injected identity to
//! wherever it points.

use std::sync::Arc;

pub use rustls::ClientConfig;
use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the root certificate file holds no PEM certificate")]
    NoCertificate,
    #[error("unreadable root certificate: {0}")]
    BadCertificate(String),
    #[error("TLS setup failed: {0}")]
    Setup(#[from] rustls::Error),
}

/// A client builder: HTTPS with the Mozilla roots and `extra_roots_pem`
/// (PEM certificates), HTTP/1.1, redirects passed back to the caller.
pub fn client_builder(extra_roots_pem: Option<&[u8]>) -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(extra_roots_pem)?)
        .redirect(reqwest::redirect::Policy::none()))
}

/// The TLS side alone, for a client built on hyper directly (the gateway):
/// the Mozilla roots and `extra_roots_pem`, ALPN `http/1.1`.
pub fn client_config(extra_roots_pem: Option<&[u8]>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|err| TlsError::BadCertificate(err.to_string()))?;
            roots
                .add(cert)
                .map_err(|err| TlsError::BadCertificate(err.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::NoCertificate);
        }
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Makes `ring` the process-wide rustls provider, unless one is installed.
/// Clients built by [`client_builder`] do not need it; a plain
/// `reqwest::Client` in the same process does (reqwest is built without a
/// provider of its own, so the binary carries one crypto library, not two).
pub fn install_default_provider() {
    // An error only means a provider is already installed: fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
