//! `/api/v1/forward-auth/{tenant}`: every answer a proxy can get, asked the
//! way nginx, Traefik, Caddy and Envoy ask (the real nginx is in
//! `forward_auth_nginx.rs`).

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    both_engines,
    health::{metrics_text, sample},
    helpers::{TestApp, TestDb, audited_calls},
};

/// A token long enough for `KEYSMITH_FORWARD_AUTH_TOKEN`.
pub const PROXY_TOKEN: &str = "proxy-token-0123456789abcdef0123456789";

/// Asks forward-auth for `tenant` with `headers`, as a proxy on this host.
pub async fn ask(app: &TestApp, tenant: &str, headers: &[(&str, &str)]) -> Response {
    ask_at(app, &format!("/api/v1/forward-auth/{tenant}"), headers).await
}

async fn ask_at(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = app.client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("forward-auth")
}

fn bearer(key: &Value) -> String {
    format!("Bearer {}", key["key"].as_str().expect("key"))
}

/// Audit rows (tool, reason, status) of `key_id`, once at least `min` are written.
pub async fn audit_rows(
    app: &TestApp,
    key_id: &str,
    min: usize,
) -> Vec<(String, String, Option<i64>)> {
    audited_calls(app, key_id, min)
        .await
        .into_iter()
        .map(|(tool, _, reason, status)| (tool, reason, status))
        .collect()
}

/// Twenty asks at once with `key` and `headers`.
async fn burst(app: &TestApp, key: &Value, headers: &[(&str, &str)]) -> Vec<Response> {
    let auth = bearer(key);
    let mut all = headers.to_vec();
    all.push(("authorization", &auth));
    futures_util::future::join_all((0..20).map(|_| ask(app, "acme", &all))).await
}

async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("json body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

both_engines! {
    async fn a_valid_key_passes_with_its_identity_and_each_request_is_audited(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "files/*"]})).await;
        let id = key["id"].as_str().expect("id");
        let auth = bearer(&key);

        let passed = ask(&app, "acme", &[("authorization", &auth), ("mcp-method", "tools/call"), ("mcp-name", "whoami"), ("x-request-id", "req-1")]).await;
        assert_eq!(passed.status(), StatusCode::OK);
        let headers = passed.headers();
        assert_eq!(headers["x-keysmith-service-user"], "ci-bot");
        assert_eq!(headers["x-keysmith-service-user-id"], su.as_str());
        assert_eq!(headers["x-keysmith-key-id"], id);
        assert_eq!(headers["x-keysmith-tenant"], "acme");
        assert_eq!(headers["cache-control"], "no-store");

        // The Base64 form the SDKs send for names that are not plain ASCII.
        let encoded = ask(&app, "acme", &[("authorization", &auth), ("mcp-method", "tools/call"), ("mcp-name", "=?base64?ZmlsZXMvcsOpc3Vtw6k=?=")]).await;
        assert_eq!(encoded.status(), StatusCode::OK, "files/résumé matches files/*");
        let listing = ask(&app, "acme", &[("authorization", &auth), ("mcp-method", "=?base64?dG9vbHMvbGlzdA==?=")]).await;
        assert_eq!(listing.status(), StatusCode::OK);
        // Not an MCP message: the original request names it, never its query.
        let plain = ask(&app, "acme", &[("authorization", &auth), ("x-forwarded-method", "GET"), ("x-forwarded-uri", "/files/a?token=secret")]).await;
        assert_eq!(plain.status(), StatusCode::OK);
        // Envoy appends the original path to the prefix and asks with the client's method.
        let envoy = app.client.delete(app.url("/api/v1/forward-auth/acme/mcp/session")).header("authorization", &auth).send().await.expect("envoy");
        assert_eq!(envoy.status(), StatusCode::FORBIDDEN, "a DELETE may carry a body: this key names tools, so it must name its method");

        let rows = audit_rows(&app, id, 5).await;
        assert_eq!(rows, vec![
            ("whoami".to_owned(), "valid".to_owned(), Some(200)),
            ("files/résumé".to_owned(), "valid".to_owned(), Some(200)),
            ("tools/list".to_owned(), "valid".to_owned(), Some(200)),
            ("GET /files/a".to_owned(), "valid".to_owned(), Some(200)),
            ("DELETE /mcp/session".to_owned(), "tool_not_allowed".to_owned(), Some(403)),
        ]);
        let request_id: Option<String> = sqlx::query_scalar("SELECT request_id FROM audit_events WHERE key_id = $1 AND tool = 'whoami'")
            .bind(id).fetch_one(app.state.pool()).await.expect("request id");
        assert_eq!(request_id.as_deref(), Some("req-1"));
    }

    async fn no_key_a_bad_key_and_a_revoked_key_are_401_with_a_challenge(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id");
        let before = sample(&metrics_text(&app).await, "keysmith_layer_requests_total", &["outcome=\"missing_key\""]).unwrap_or(0.0);

        for headers in [vec![], vec![("authorization", "Bearer ks_garbage")], vec![("authorization", "Basic abc")]] {
            let refused = ask(&app, "acme", &headers).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
            assert_eq!(refused.headers()["www-authenticate"], "Bearer");
            assert_eq!(refused.headers()["cache-control"], "no-store");
            assert_eq!(error_code(refused).await, "unauthorized");
        }
        let after = sample(&metrics_text(&app).await, "keysmith_layer_requests_total", &["outcome=\"missing_key\""]).unwrap_or(0.0);
        assert!(after >= before + 2.0, "requests without a key are counted: {before} → {after}");

        let auth = bearer(&key);
        assert_eq!(ask(&app, "acme", &[("authorization", &auth)]).await.status(), StatusCode::OK);
        assert_eq!(app.revoke_key(id, "leaked").await.status(), StatusCode::OK);
        let refused = ask(&app, "acme", &[("authorization", &auth), ("x-forwarded-method", "POST"), ("x-original-uri", "/api/thing")]).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "revoked: refused at the next request");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        let rows = audit_rows(&app, id, 2).await;
        assert_eq!(rows[1], ("POST /api/thing".to_owned(), "revoked".to_owned(), Some(401)));
    }

    async fn a_refused_tool_and_another_tenants_key_are_403(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"]})).await;
        let id = key["id"].as_str().expect("id");
        let auth = bearer(&key);

        let refused = ask(&app, "acme", &[("authorization", &auth), ("mcp-method", "tools/call"), ("mcp-name", "delete_everything")]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(refused.headers()["cache-control"], "no-store");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "tool_not_allowed", "{body}");
        assert!(body["error"]["message"].as_str().expect("message").contains("delete_everything"), "{body}");
        // A key limited to some tools must say what a POST asks.
        let unnamed = ask(&app, "acme", &[("authorization", &auth), ("x-forwarded-method", "POST"), ("x-forwarded-uri", "/mcp")]).await;
        assert_eq!(unnamed.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_code(unnamed).await, "forbidden");
        // A GET carries no MCP message (the event stream): it passes.
        let stream = ask(&app, "acme", &[("authorization", &auth), ("x-forwarded-method", "GET"), ("x-forwarded-uri", "/mcp")]).await;
        assert_eq!(stream.status(), StatusCode::OK);
        let rows = audit_rows(&app, id, 3).await;
        assert_eq!(rows, vec![
            ("delete_everything".to_owned(), "tool_not_allowed".to_owned(), Some(403)),
            ("POST /mcp".to_owned(), "tool_not_allowed".to_owned(), Some(403)),
            ("GET /mcp".to_owned(), "valid".to_owned(), Some(200)),
        ]);

        // The proxy of another tenant: this key is forbidden there, and
        // audited nowhere (not that tenant's key, not this tenant's proxy).
        app.create_tenant("globex").await;
        for tenant in ["globex", "no-such-tenant"] {
            let other = ask(&app, tenant, &[("authorization", &auth), ("mcp-method", "tools/call"), ("mcp-name", "whoami")]).await;
            assert_eq!(other.status(), StatusCode::FORBIDDEN, "{tenant}");
            assert_eq!(error_code(other).await, "forbidden");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(audit_rows(&app, id, 3).await.len(), 3, "nothing audited for another tenant's proxy");
        let unnamed = ask_at(&app, "/api/v1/forward-auth", &[("authorization", &auth)]).await;
        assert_eq!(unnamed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(unnamed).await, "tenant_required");
    }

    async fn routing_headers_that_cannot_be_read_one_way_are_400(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let auth = bearer(&key);
        for (headers, why) in [
            (vec![("mcp-method", "tools/call")], "tools/call without its tool"),
            (vec![("mcp-name", "whoami")], "Mcp-Name without Mcp-Method"),
            (vec![("mcp-method", "tools/call"), ("mcp-name", "=?base64?not base64?=")], "a broken Base64 form"),
            (vec![("mcp-method", "tools/list"), ("mcp-name", "whoami")], "Mcp-Name on a method that defines none"),
            (vec![("mcp-method", "Tools/Call"), ("mcp-name", "whoami")], "tools/call in another case"),
            (vec![("x-forwarded-method", "P(ST")], "not a method"),
            (vec![("x-keysmith-tenant", "globex")], "an identity header from the client"),
            (vec![("X_Keysmith_Service_User", "admin")], "one spelled with underscores"),
        ] {
            let mut all = vec![("authorization", auth.as_str())];
            all.extend(headers);
            let refused = ask(&app, "acme", &all).await;
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{why}");
        }
        let twice = app.client.get(app.url("/api/v1/forward-auth/acme")).header("authorization", &auth)
            .header("mcp-method", "tools/call").header("mcp-name", "a").header("mcp-name", "b").send().await.expect("ask");
        assert_eq!(twice.status(), StatusCode::BAD_REQUEST, "Mcp-Name twice");
        let rows = audit_rows(&app, key["id"].as_str().expect("id"), 8).await;
        let smuggled: Vec<_> = rows.iter().filter(|(_, reason, _)| reason == "bad_request").collect();
        assert!(smuggled.len() >= 2, "refusals of a genuine key are audited: {rows:?}");
    }

    async fn a_burst_over_the_limit_lets_exactly_the_allowed_count_through(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let rated = app.create_key(&su, json!({"rate_limit": {"per_minute": 5}})).await;
        let quota = app.create_key(&su, json!({"quota": {"calls": 3, "per": "day"}})).await;

        let answers = burst(&app, &rated, &[("mcp-method", "tools/call"), ("mcp-name", "whoami")]).await;
        let passed = answers.iter().filter(|r| r.status() == StatusCode::OK).count();
        let limited: Vec<_> = answers.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).collect();
        assert_eq!((passed, limited.len()), (5, 15), "a tools/call burst");
        let retry_after: u64 = limited[0].headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=12).contains(&retry_after), "{retry_after}");
        let again = ask(&app, "acme", &[("authorization", &bearer(&rated)), ("mcp-method", "tools/call"), ("mcp-name", "whoami")]).await;
        assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
        let header: u64 = again.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        let body: Value = again.json().await.expect("json");
        assert_eq!(body, json!({"error": {"code": "rate_limited", "message": "rate limit 5/min for this key exceeded", "retry_after": header}}));
        // Other MCP methods are not counted, as behind the layer.
        let listing = ask(&app, "acme", &[("authorization", &bearer(&rated)), ("mcp-method", "tools/list")]).await;
        assert_eq!(listing.status(), StatusCode::OK);

        // A request that is not an MCP message counts, as behind `--no-mcp`.
        let answers = burst(&app, &quota, &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/reports")]).await;
        let statuses: Vec<StatusCode> = answers.iter().map(Response::status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 17, "{statuses:?}");
        let refused = ask(&app, "acme", &[("authorization", &bearer(&quota))]).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        assert_eq!(error_code(refused).await, "quota_exhausted");

        let rows = audit_rows(&app, rated["id"].as_str().expect("id"), 22).await;
        assert_eq!(rows.iter().filter(|(_, reason, _)| reason == "rate_limited").count(), 16);
        assert!(rows.iter().filter(|(_, reason, _)| reason == "rate_limited").all(|(tool, _, status)| tool == "whoami" && *status == Some(429)));
    }

    async fn the_database_down_is_503_never_a_pass(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let auth = bearer(&key);
        assert_eq!(ask(&app, "acme", &[("authorization", &auth)]).await.status(), StatusCode::OK);
        app.state.pool().close().await;
        let refused = ask(&app, "acme", &[("authorization", &auth)]).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["cache-control"], "no-store");
    }
}

both_engines! {
    async fn with_a_proxy_token_only_its_holder_is_answered(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id").to_owned();
        let auth = bearer(&key);
        let clock = app.clock.clone();
        let db: TestDb = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_FORWARD_AUTH_TOKEN", PROXY_TOKEN.to_owned())], Some(clock)).await;

        let wrong = format!("{PROXY_TOKEN}x");
        for (token, why) in [(None, "no token, even from loopback"), (Some(wrong.as_str()), "a wrong token"), (Some(&PROXY_TOKEN[1..]), "a prefix of it")] {
            let mut headers = vec![("authorization", auth.as_str())];
            headers.extend(token.map(|t| ("keysmith-proxy-token", t)));
            let refused = ask(&app, "acme", &headers).await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{why}");
            assert!(!refused.headers().contains_key("x-keysmith-key-id"));
            assert_eq!(error_code(refused).await, "forbidden");
        }
        let twice = app.client.get(app.url("/api/v1/forward-auth/acme")).header("authorization", &auth)
            .header("keysmith-proxy-token", PROXY_TOKEN).header("keysmith-proxy-token", PROXY_TOKEN).send().await.expect("ask");
        assert_eq!(twice.status(), StatusCode::FORBIDDEN, "the token twice");
        let passed = ask(&app, "acme", &[("authorization", &auth), ("keysmith-proxy-token", PROXY_TOKEN)]).await;
        assert_eq!(passed.status(), StatusCode::OK);
        assert_eq!(passed.headers()["x-keysmith-key-id"], id.as_str());
        // Refused callers never reached the judge: one row, the proxy's.
        assert_eq!(audit_rows(&app, &id, 1).await.len(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(audit_rows(&app, &id, 1).await.len(), 1);
    }
}
