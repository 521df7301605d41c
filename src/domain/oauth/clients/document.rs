//! Client ID metadata documents: a client whose client_id is an https URL
//! publishes its metadata there. Fetched as webhooks are delivered (the
//! address guard of `webhooks::WebhookUrl`: global addresses only, the
//! connection pinned to the checked address, no redirects), under a size
//! and a time cap, and cached: what a document said (or why it was
//! refused) is reused for a while, so a burst of authorization requests
//! costs one fetch.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{
    AuthMethod, ClientKind, ClientRefused, OAuthClient, redirect,
    store::{ClientMetadata, RawMetadata},
};
use crate::domain::webhooks::WebhookUrl;

/// The most a document may weigh.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// One fetch, name resolution to last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A document is reused for its `Cache-Control: max-age` within these
/// bounds, [`DEFAULT_TTL`] without one; a refusal for [`REFUSAL_TTL`].
pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
pub const REFUSAL_TTL: Duration = Duration::from_secs(30);
/// Documents kept at once; fetches under way at once.
const MAX_ENTRIES: usize = 1000;
const MAX_FETCHES: usize = 4;
const MAX_URL_LEN: usize = 2000;

/// What the operator allows of document fetches (from the configuration).
#[derive(Debug, Clone, Default)]
pub struct DocumentFetch {
    /// `KEYSMITH_OAUTH_CLIENT_ALLOW_PRIVATE`: documents on loopback and
    /// private addresses (a client on the operator's own network; tests).
    pub allow_private: bool,
    /// `KEYSMITH_OAUTH_CLIENT_CA_FILE`: PEM roots trusted besides the
    /// Mozilla set (a private CA; tests' self-signed servers).
    pub extra_roots_pem: Option<Vec<u8>>,
}

#[derive(Debug)]
pub(super) struct Documents {
    allow_private: bool,
    tls: keysmith_verify::tls::ClientConfig,
    cache: Mutex<HashMap<String, Entry>>,
    fetches: Semaphore,
}

#[derive(Debug, Clone)]
struct Entry {
    verdict: Result<OAuthClient, ClientRefused>,
    until: Instant,
}

impl Documents {
    pub(super) fn new(fetch: DocumentFetch) -> anyhow::Result<Self> {
        let tls = keysmith_verify::tls::client_config(fetch.extra_roots_pem.as_deref())
            .context("failed to set up TLS for client metadata documents")?;
        Ok(Self {
            allow_private: fetch.allow_private,
            tls,
            cache: Mutex::new(HashMap::new()),
            fetches: Semaphore::new(MAX_FETCHES),
        })
    }

    pub(super) async fn resolve(&self, client_id: &str) -> Result<OAuthClient, ClientRefused> {
        if let Some(hit) = self.cached(client_id) {
            return hit;
        }
        let (verdict, ttl) = match self.fetch(client_id).await {
            Ok((client, ttl)) => (Ok(client), ttl),
            Err(why) => {
                tracing::info!(client_id, why = %why, "client metadata document refused");
                (Err(ClientRefused::Document(why)), REFUSAL_TTL)
            }
        };
        self.remember(client_id, verdict.clone(), ttl);
        verdict
    }

    fn cached(&self, client_id: &str) -> Option<Result<OAuthClient, ClientRefused>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(client_id)
            .filter(|entry| entry.until > Instant::now())
            .map(|entry| entry.verdict.clone())
    }

    fn remember(
        &self,
        client_id: &str,
        verdict: Result<OAuthClient, ClientRefused>,
        ttl: Duration,
    ) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(client_id) {
            cache.retain(|_, entry| entry.until > now);
            if cache.len() >= MAX_ENTRIES
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, entry)| entry.until)
                    .map(|(url, _)| url.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            client_id.to_owned(),
            Entry {
                verdict,
                until: now + ttl,
            },
        );
    }

    /// Fetches and checks the document at `client_id`, with how long to keep it.
    async fn fetch(&self, client_id: &str) -> Result<(OAuthClient, Duration), String> {
        let url = check_document_url(client_id)?;
        let _turn = self
            .fetches
            .acquire()
            .await
            .map_err(|_| "shutting down".to_owned())?;
        let (body, ttl) = tokio::time::timeout(FETCH_TIMEOUT, self.download(&url))
            .await
            .map_err(|_| format!("no complete answer within {} s", FETCH_TIMEOUT.as_secs()))??;
        Ok((parse_document(client_id, &body)?, ttl))
    }

    async fn download(&self, url: &WebhookUrl) -> Result<(Vec<u8>, Duration), String> {
        let addrs = url.resolve(self.allow_private).await.map_err(|err| {
            // The guard's hint names the webhook setting; this one is ours.
            let text = err.to_string();
            let text = text.trim_start_matches("url: ");
            text.split(" (set ").next().unwrap_or(text).to_owned()
        })?;
        // No proxy from the environment: it would connect by name, wherever
        // DNS points next, and the address check above would be moot.
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(FETCH_TIMEOUT);
        if let Some(url::Host::Domain(host)) = url.url().host() {
            builder = builder.resolve_to_addrs(host, &addrs);
        }
        let client = builder
            .build()
            .map_err(|err| format!("client setup failed: {err}"))?;
        let mut response = client
            .get(url.url().clone())
            .header("accept", "application/json")
            .header("user-agent", "Keysmith-OAuth/1")
            .send()
            .await
            .map_err(|err| format!("the request failed: {}", err.without_url()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "it answered HTTP {} (redirects are not followed)",
                status.as_u16()
            ));
        }
        if status != reqwest::StatusCode::OK {
            return Err(format!("it answered HTTP {}", status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_big());
        }
        let ttl = ttl_of(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| format!("reading it failed: {}", err.without_url()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, ttl))
    }
}

fn too_big() -> String {
    format!("it is larger than {} KiB", MAX_DOCUMENT_BYTES / 1024)
}

/// The client_id as a document URL: https, a path beyond `/`, no dot
/// segments, fragment or credentials, and written as it will be compared
/// (its parsed form is the same string).
fn check_document_url(client_id: &str) -> Result<WebhookUrl, String> {
    if client_id.len() > MAX_URL_LEN {
        return Err(format!("the URL is longer than {MAX_URL_LEN} characters"));
    }
    let parsed = url::Url::parse(client_id).map_err(|_| "the client_id is not a URL".to_owned())?;
    if parsed.scheme() != "https" {
        return Err("the client_id URL must be https".to_owned());
    }
    if parsed.as_str() != client_id {
        return Err("the client_id URL is not in its normalized form".to_owned());
    }
    if parsed.path() == "/" || parsed.path().is_empty() {
        return Err("the client_id URL must have a path".to_owned());
    }
    if client_id.contains('#') {
        return Err("the client_id URL has no fragment".to_owned());
    }
    if parsed
        .path_segments()
        .into_iter()
        .flatten()
        .any(|segment| matches!(segment, "." | ".." | "%2e" | "%2E" | "%2e%2e" | "%2E%2E"))
    {
        return Err("the client_id URL has no dot segments".to_owned());
    }
    WebhookUrl::parse(client_id).map_err(|err| err.to_string())
}

/// The fields of a document beyond RFC 7591 metadata that Keysmith checks.
#[derive(Deserialize)]
struct Document {
    client_id: Option<String>,
    client_secret: Option<serde_json::Value>,
    #[serde(flatten)]
    metadata: RawMetadata,
}

/// Checks a document: JSON, its `client_id` exactly the URL it came from,
/// a public client (a shared secret cannot be published), metadata that
/// passes the registration rules.
fn parse_document(client_id: &str, body: &[u8]) -> Result<OAuthClient, String> {
    let document: Document = serde_json::from_slice(body)
        .map_err(|err| format!("it is not a JSON client metadata object ({err})"))?;
    if document.client_id.as_deref() != Some(client_id) {
        return Err("its client_id is not the URL it was fetched from".to_owned());
    }
    if document.client_secret.is_some() {
        return Err("it carries a client_secret (a published secret is no secret)".to_owned());
    }
    let mut raw = document.metadata;
    match raw.token_endpoint_auth_method.as_deref() {
        None | Some("none") => raw.token_endpoint_auth_method = Some("none".to_owned()),
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method {other:?} is not supported for a metadata document (use none)"
            ));
        }
    }
    let metadata = ClientMetadata::parse(raw).map_err(|err| err.message)?;
    let origin = redirect::origin_of(client_id).unwrap_or_default();
    Ok(OAuthClient {
        client_id: client_id.to_owned(),
        kind: ClientKind::MetadataDocument,
        name: metadata.name.unwrap_or_else(|| origin.clone()),
        origin,
        client_uri: metadata.client_uri,
        redirect_uris: metadata.redirect_uris,
        grant_types: metadata.grant_types,
        auth_method: AuthMethod::None,
        secret_hash: None,
    })
}

/// How long to keep a document: its `max-age` within [`MIN_TTL`] and
/// [`MAX_TTL`] (`no-store`/`no-cache` count as the minimum: a fetch per
/// request would let anyone make Keysmith fetch in a loop).
fn ttl_of(headers: &reqwest::header::HeaderMap) -> Duration {
    let Some(value) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT_TTL;
    };
    let mut ttl = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_TTL;
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            ttl = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    ttl.map_or(DEFAULT_TTL, |ttl| ttl.clamp(MIN_TTL, MAX_TTL))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://client.example.com/oauth/client.json";

    fn headers(cache_control: &str) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        map.insert(
            reqwest::header::CACHE_CONTROL,
            cache_control.parse().expect("header"),
        );
        map
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        assert_eq!(ttl_of(&headers("max-age=3600")), Duration::from_secs(3600));
        assert_eq!(ttl_of(&headers("public, max-age=5")), MIN_TTL);
        assert_eq!(ttl_of(&headers("max-age=99999999")), MAX_TTL);
        assert_eq!(ttl_of(&headers("no-store")), MIN_TTL);
        assert_eq!(ttl_of(&headers("max-age=oops")), DEFAULT_TTL);
        assert_eq!(ttl_of(&reqwest::header::HeaderMap::new()), DEFAULT_TTL);
    }

    #[test]
    fn document_urls() {
        assert!(check_document_url(URL).is_ok());
        for bad in [
            "http://client.example.com/client.json",
            "https://client.example.com",
            "https://client.example.com/",
            "https://client.example.com/a/../client.json",
            "https://client.example.com/a/%2e%2e/client.json",
            "https://client.example.com/client.json#x",
            "https://u:p@client.example.com/client.json",
            "https://CLIENT.example.com/client.json",
            "https://client.example.com:443/client.json",
        ] {
            assert!(check_document_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_document_must_name_itself_and_be_public() {
        let good = serde_json::json!({
            "client_id": URL, "client_name": "Example", "redirect_uris": ["http://127.0.0.1/cb"],
        });
        let client = parse_document(URL, good.to_string().as_bytes()).expect("valid");
        assert_eq!(client.kind, ClientKind::MetadataDocument);
        assert_eq!(client.origin, "https://client.example.com");
        assert!(!client.is_confidential());
        assert!(client.redirect_allowed("http://127.0.0.1:4444/cb"));

        let other = serde_json::json!({"client_id": "https://evil.example/c.json", "redirect_uris": ["https://evil.example/cb"]});
        let err = parse_document(URL, other.to_string().as_bytes()).expect_err("refused");
        assert!(err.contains("not the URL"), "{err}");
        let secret = serde_json::json!({"client_id": URL, "client_secret": "x", "redirect_uris": ["https://e.com/cb"]});
        assert!(parse_document(URL, secret.to_string().as_bytes()).is_err());
        let basic = serde_json::json!({"client_id": URL, "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["https://e.com/cb"]});
        assert!(parse_document(URL, basic.to_string().as_bytes()).is_err());
        let no_redirect = serde_json::json!({"client_id": URL});
        assert!(parse_document(URL, no_redirect.to_string().as_bytes()).is_err());
        assert!(parse_document(URL, b"<html>").is_err());
    }
}
