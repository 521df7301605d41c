//! Where the gateway sends requests: the `--upstream` base URI, parsed once,
//! and the pool of connections to it.

use std::{borrow::Cow, sync::Arc};

use axum::http::HeaderValue;
use http::{
    Response,
    uri::{PathAndQuery, Scheme, Uri},
};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use keysmith_verify::tls;

use super::pool::{Connector, Outgoing, Pool, PooledBody, SendError};

/// Opens TCP connections, with TLS for an `https://` upstream.
pub(super) fn connector(mut tls: tls::ClientConfig) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // No overall timeout: SSE responses stay open as long as the server streams.
    http.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    // hyper-rustls sets ALPN itself from the protocols enabled below.
    tls.alpn_protocols.clear();
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The upstream base URI, parsed once, and keep-alive connections to it.
#[derive(Clone, Debug)]
pub(super) struct Upstream {
    /// The base URI's path without its trailing `/` ("" for none), put in
    /// front of every request's path.
    prefix: Arc<str>,
    /// The `Host` the upstream is sent (without the scheme's default port),
    /// built once here rather than on every request.
    pub(super) host: HeaderValue,
    pool: Pool,
}

/// An upstream base URI the gateway cannot use.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("--upstream must be an absolute http:// or https:// URL: {0}")]
    NotHttp(String),
    #[error("--upstream must not carry a query string or credentials")]
    Extra,
}

impl Upstream {
    pub(super) fn new(base: &str, tls: tls::ClientConfig) -> Result<Self, UpstreamError> {
        let not_http = || UpstreamError::NotHttp(base.to_owned());
        let uri: Uri = base.parse().map_err(|_| not_http())?;
        let scheme = uri.scheme().cloned().ok_or_else(not_http)?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(not_http());
        }
        let authority = uri.authority().cloned().ok_or_else(not_http)?;
        if uri.query().is_some() || authority.as_str().contains('@') {
            return Err(UpstreamError::Extra);
        }
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", authority.host()),
            _ => authority.host().to_owned(),
        };
        let host = HeaderValue::try_from(host).map_err(|_| not_http())?;
        let target = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|_| not_http())?;
        Ok(Self {
            prefix: uri.path().trim_end_matches('/').into(),
            host,
            pool: Pool::new(connector(tls), target),
        })
    }

    /// The upstream's request target in origin form (`/path?query`, what
    /// an HTTP/1.1 request line carries) for a request's path and query.
    pub(super) fn target_for<'a>(&self, path_and_query: Option<&'a PathAndQuery>) -> Cow<'a, str> {
        let path = path_and_query.map_or("/", PathAndQuery::as_str);
        if self.prefix.is_empty() {
            Cow::Borrowed(path)
        } else {
            // Both checked: the prefix by `Uri` at start, the path by the
            // request's own parse.
            Cow::Owned(format!("{}{path}", self.prefix))
        }
    }

    /// Sends a request whose target comes from [`Self::target_for`] and
    /// whose fields name [`Self::host`]. Redirects are not followed: a 3xx
    /// goes back to the client.
    pub(super) async fn send<F>(
        &self,
        request: Outgoing<'_, F>,
    ) -> Result<Response<PooledBody>, SendError>
    where
        F: FnOnce(&mut Vec<u8>),
    {
        self.pool.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(base: &str) -> Result<Upstream, UpstreamError> {
        Upstream::new(
            base,
            tls::client_config(None).expect("the Mozilla roots load"),
        )
    }

    #[test]
    fn only_plain_http_or_https_base_urls_are_upstreams() {
        for bad in [
            "ftp://example.test",
            "example.test:80",
            "/relative",
            "http://user:pw@example.test",
            "http://example.test/?q=1",
        ] {
            assert!(upstream(bad).is_err(), "{bad} was accepted");
        }
        assert!(upstream("https://example.test").is_ok());
    }

    #[test]
    fn request_paths_follow_the_base_path_in_origin_form() {
        let pq = |s: &'static str| PathAndQuery::from_static(s);
        let path = |upstream: &Upstream, pq: Option<&PathAndQuery>| {
            let target = upstream.target_for(pq);
            // A valid origin-form target, as a request line carries it.
            let parsed = PathAndQuery::try_from(&*target).expect("a valid target");
            assert_eq!(parsed.as_str(), target);
            target.into_owned()
        };
        let bare = upstream("http://127.0.0.1:9000/").expect("a valid base");
        assert_eq!(path(&bare, Some(&pq("/mcp?x=1"))), "/mcp?x=1");
        assert_eq!(path(&bare, None), "/");
        let nested = upstream("https://example.test/api/").expect("a valid base");
        assert_eq!(path(&nested, Some(&pq("/mcp?x=1"))), "/api/mcp?x=1");
        assert_eq!(path(&nested, None), "/api/");
    }

    #[test]
    fn the_upstream_is_sent_its_own_host() {
        for (base, host) in [
            ("http://127.0.0.1:9000/", "127.0.0.1:9000"),
            ("http://mcp.test:80/api", "mcp.test"),
            ("http://mcp.test:443", "mcp.test:443"),
            ("https://mcp.test:443", "mcp.test"),
            ("https://mcp.test:8443/", "mcp.test:8443"),
            ("http://[::1]:9000", "[::1]:9000"),
        ] {
            let upstream = upstream(base).expect("a valid base");
            assert_eq!(upstream.host, host, "{base}");
        }
    }
}
