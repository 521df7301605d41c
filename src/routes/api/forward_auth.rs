//! `/api/v1/forward-auth/{tenant}` (any method): a reverse proxy asks
//! whether to pass its client's request (nginx `auth_request`, Traefik
//! `ForwardAuth`, Caddy `forward_auth`, Envoy `ext_authz`). Only the proxy
//! may ask: `Keysmith-Proxy-Token`, or a loopback peer when no token is
//! configured. The tenant is in the path, set in the proxy's configuration
//! where its client cannot reach it. The judging is the layer's
//! (`keysmith_verify::layer::ForwardAuth`).

use std::net::SocketAddr;

use axum::{
    Extension, Json,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use keysmith_verify::{TenantScope, layer::OriginalRequest};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::{config::Config, state::AppState};

pub const PROXY_TOKEN: HeaderName = HeaderName::from_static("keysmith-proxy-token");

/// Where proxies say what their client asked, in the order they are read.
const METHOD_HEADERS: [&str; 2] = ["x-forwarded-method", "x-original-method"];
const URI_HEADERS: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];

/// The form Envoy `ext_authz` asks with: the original path appended to
/// `path_prefix`, asked with the client's own method.
pub async fn check_with_path(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path((tenant, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    answer(&state, peer, &tenant, &method, Some(&path), &headers).await
}

#[utoipa::path(get, operation_id = "forward_auth_check", path = "/api/v1/forward-auth/{tenant}", tag = "forward-auth",
    description = "Asked by a reverse proxy before it passes a request (any method; also `/api/v1/forward-auth/{tenant}/{path}` with the original path appended, as Envoy sends it). \
        The client's `Authorization: Bearer <key>` is judged as the verification layer judges it, for the MCP message `Mcp-Method`/`Mcp-Name` name, \
        else for `X-Forwarded-Method`/`X-Original-Method` and `X-Original-URI`/`X-Forwarded-Uri`. Every answer is `Cache-Control: no-store`.",
    params(("tenant" = String, Path, description = "the slug of the tenant the proxy serves: another tenant's key is 403")),
    responses(
        (status = 200, description = "pass: copy `x-keysmith-service-user`, `x-keysmith-service-user-id`, `x-keysmith-key-id` and `x-keysmith-tenant` onto the request"),
        (status = 400, description = "Mcp-Method / Mcp-Name or the original method that cannot be read one way"),
        (status = 401, description = "no key, or one that is unknown, expired, revoked or disabled (with `WWW-Authenticate: Bearer`)"),
        (status = 403, description = "not the proxy (token or loopback), a tool the key may not call, or another tenant's key"),
        (status = 429, description = "over the key's rate limit or quota (with `Retry-After`)"),
        (status = 503, description = "the key or its limits cannot be checked (the database is down): never a pass"),
    ),
    security(("proxy_token" = [])))]
pub async fn check(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(tenant): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    answer(&state, peer, &tenant, &method, None, &headers).await
}

/// The same operation for proxies that ask with the client's method (Envoy).
#[utoipa::path(post, operation_id = "forward_auth_check_post", path = "/api/v1/forward-auth/{tenant}", tag = "forward-auth",
    description = "As `GET`: the answer does not depend on the method the proxy asks with.",
    params(("tenant" = String, Path, description = "the slug of the tenant the proxy serves")),
    responses(
        (status = 200, description = "pass, with the identity headers"),
        (status = 400, description = "routing headers that cannot be read one way"),
        (status = 401, description = "no key or a bad one (with `WWW-Authenticate: Bearer`)"),
        (status = 403, description = "not the proxy, a refused tool, or another tenant's key"),
        (status = 429, description = "over a limit (with `Retry-After`)"),
        (status = 503, description = "the key cannot be checked: never a pass"),
    ),
    security(("proxy_token" = [])))]
#[expect(
    dead_code,
    reason = "documents the POST form of `check`, which serves every method"
)]
fn check_post() {}

/// A proxy that did not name the tenant it serves.
pub async fn tenant_required() -> Response {
    refusal(
        StatusCode::BAD_REQUEST,
        "tenant_required",
        "name the tenant this proxy serves: /api/v1/forward-auth/{tenant}",
    )
}

async fn answer(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    tenant: &str,
    method: &Method,
    path: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    if let Err(why) = proxy_allowed(&state.config, headers, peer) {
        return refusal(StatusCode::FORBIDDEN, "forbidden", why);
    }
    let Some(original) = original_request(headers, method, path) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "X-Forwarded-Method / X-Original-Method and X-Original-URI / X-Forwarded-Uri are sent at most once each, with a valid method",
        );
    };
    let scope = TenantScope::only(tenant);
    state
        .forward_auth()
        .judge(&scope, headers, &original)
        .await
        .map(axum::body::Body::new)
}

/// Whether the caller is the proxy: with `KEYSMITH_FORWARD_AUTH_TOKEN` set,
/// the holder of that token (compared in constant time), from anywhere;
/// without it, a peer on this host.
fn proxy_allowed(
    config: &Config,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<(), &'static str> {
    match &config.forward_auth_token {
        Some(token) => {
            let mut sent = headers.get_all(&PROXY_TOKEN).iter();
            match (sent.next(), sent.next()) {
                (Some(sent), None)
                    if bool::from(sent.as_bytes().ct_eq(token.expose().as_bytes())) =>
                {
                    Ok(())
                }
                _ => Err(
                    "forward-auth answers only the proxy: send Keysmith-Proxy-Token with the value of KEYSMITH_FORWARD_AUTH_TOKEN",
                ),
            }
        }
        None if peer.is_some_and(|p| p.ip().to_canonical().is_loopback()) => Ok(()),
        None => Err(
            "forward-auth answers only proxies on this host unless KEYSMITH_FORWARD_AUTH_TOKEN is set",
        ),
    }
}

/// The request the proxy holds: the method and path it forwards, else the
/// method it asks with and the path appended to ours; `None` when a header
/// is sent twice or names no valid method.
fn original_request(
    headers: &HeaderMap,
    asked_with: &Method,
    appended: Option<&str>,
) -> Option<OriginalRequest> {
    let method = match first_of(headers, &METHOD_HEADERS)? {
        Some(raw) => Method::from_bytes(raw.trim().as_bytes()).ok()?,
        None => asked_with.clone(),
    };
    let path = match first_of(headers, &URI_HEADERS)? {
        Some(uri) => path_of(uri),
        None => format!("/{}", appended.unwrap_or_default()),
    };
    Some(OriginalRequest { method, path })
}

/// The value of the first of `names` that is present; `None` when it is
/// sent twice or is not text.
fn first_of<'h>(headers: &'h HeaderMap, names: &[&str]) -> Option<Option<&'h str>> {
    let Some(name) = names.iter().find(|n| headers.contains_key(**n)) else {
        return Some(None);
    };
    let mut values = headers.get_all(*name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok().map(Some),
        _ => None,
    }
}

/// The path of a request target (`/mcp?x=1` → `/mcp`); the audit names
/// paths, never query strings (they may carry secrets).
fn path_of(target: &str) -> String {
    let path = match target.parse::<Uri>() {
        Ok(uri) => uri.path().to_owned(),
        Err(_) => target
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    if path.is_empty() {
        "/".to_owned()
    } else {
        path
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "a-proxy-token-of-at-least-32-characters";

    fn config(token: Option<&str>) -> Config {
        Config::from_lookup(|name| {
            (name == "KEYSMITH_FORWARD_AUTH_TOKEN")
                .then(|| token.map(str::to_owned))
                .flatten()
        })
        .expect("config")
    }

    #[test]
    fn without_a_token_only_loopback_peers_are_the_proxy() {
        let config = config(None);
        let none = HeaderMap::new();
        for peer in [
            "127.0.0.1:4000",
            "127.8.9.10:4000",
            "[::1]:4000",
            "[::ffff:127.0.0.1]:4000",
        ] {
            assert_eq!(
                proxy_allowed(&config, &none, peer.parse().ok()),
                Ok(()),
                "{peer}"
            );
        }
        for peer in [
            "192.0.2.7:4000",
            "[2001:db8::1]:4000",
            "[::ffff:192.0.2.7]:4000",
        ] {
            assert!(
                proxy_allowed(&config, &none, peer.parse().ok()).is_err(),
                "{peer}"
            );
        }
        assert!(
            proxy_allowed(&config, &none, None).is_err(),
            "no peer known"
        );
    }

    #[test]
    fn with_a_token_its_holder_is_the_proxy_from_anywhere_and_nobody_else() {
        let config = config(Some(TOKEN));
        let mut headers = HeaderMap::new();
        let remote = "192.0.2.7:4000".parse().ok();
        let local = "127.0.0.1:4000".parse().ok();
        assert!(
            proxy_allowed(&config, &headers, local).is_err(),
            "loopback needs it too"
        );
        headers.insert(
            PROXY_TOKEN,
            HeaderValue::from_static("a-proxy-token-of-at-least-32-characterz"),
        );
        assert!(
            proxy_allowed(&config, &headers, local).is_err(),
            "a wrong token"
        );
        headers.insert(PROXY_TOKEN, HeaderValue::from_static(TOKEN));
        assert_eq!(proxy_allowed(&config, &headers, remote), Ok(()));
        headers.append(PROXY_TOKEN, HeaderValue::from_static(TOKEN));
        assert!(
            proxy_allowed(&config, &headers, remote).is_err(),
            "sent twice"
        );
    }

    #[test]
    fn the_original_request_comes_from_the_first_header_a_proxy_sends() {
        let mut headers = HeaderMap::new();
        let original = original_request(&headers, &Method::GET, Some("mcp/x")).expect("read");
        assert_eq!(
            (original.method, original.path.as_str()),
            (Method::GET, "/mcp/x")
        );
        headers.insert("x-original-method", "DELETE".parse().expect("value"));
        headers.insert(
            "x-forwarded-uri",
            "/mcp?token=secret".parse().expect("value"),
        );
        let original = original_request(&headers, &Method::GET, None).expect("read");
        assert_eq!(
            (original.method, original.path.as_str()),
            (Method::DELETE, "/mcp")
        );
        headers.insert("x-forwarded-method", "POST".parse().expect("value"));
        headers.insert(
            "x-original-uri",
            "https://h.example/a/b?c".parse().expect("value"),
        );
        let original = original_request(&headers, &Method::GET, None).expect("read");
        assert_eq!(
            (original.method, original.path.as_str()),
            (Method::POST, "/a/b")
        );
        headers.append("x-forwarded-method", "GET".parse().expect("value"));
        assert_eq!(
            original_request(&headers, &Method::GET, None),
            None,
            "sent twice"
        );
        headers.insert("x-forwarded-method", "P(ST".parse().expect("value"));
        assert_eq!(
            original_request(&headers, &Method::GET, None),
            None,
            "not a method"
        );
    }
}
