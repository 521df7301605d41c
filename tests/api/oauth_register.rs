//! Dynamic client registration (RFC 7591) at `/oauth/{tenant}/register`
//! and resolving the registered client: public and confidential clients,
//! refused metadata leaving nothing behind, the tenant's switch, its cap
//! under a burst, the per-address rate limit, and tenant isolation.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    both_engines,
    helpers::{TestApp, expect_json},
    oauth::expect_oauth_error,
};
use keysmith::domain::{
    Actor, TenantId,
    oauth::clients::{AuthMethod, ClientKind, ClientRefused},
    tenancy::tenants::{self, PolicyChange},
};

pub async fn register(app: &TestApp, tenant: &str, metadata: &Value) -> Response {
    app.client
        .post(app.url(&format!("/oauth/{tenant}/register")))
        .json(metadata)
        .send()
        .await
        .expect("register")
}

/// Registers a public client of `acme` with `redirect_uris`; its client_id.
pub async fn register_public(app: &TestApp, redirect_uris: &[&str]) -> String {
    let metadata = json!({"client_name": "Test client", "redirect_uris": redirect_uris,
                          "token_endpoint_auth_method": "none"});
    let body = expect_json(register(app, "acme", &metadata).await, StatusCode::CREATED).await;
    body["client_id"].as_str().expect("client_id").to_owned()
}

async fn stored_clients(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM oauth_clients")
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

/// Opens or closes dynamic registration through the tenant policy.
async fn set_registration(app: &TestApp, open: bool, actor: &Actor) {
    let change = PolicyChange {
        oauth_registration_open: Some(open),
        ..PolicyChange::default()
    };
    tenants::update_policy(app.state.pool(), &app.tenant.id, change, actor, app.now())
        .await
        .expect("policy");
}

both_engines! {
    async fn a_public_client_gets_no_secret_and_resolves_with_its_redirects(app: TestApp) {
        let metadata = json!({
            "client_name": "Claude", "client_uri": "https://claude.ai",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "scope": "tools:*", "software_id": "ignored",
        });
        let res = register(&app, "acme", &metadata).await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body = expect_json(res, StatusCode::CREATED).await;
        let client_id = body["client_id"].as_str().expect("client_id");
        assert!(client_id.starts_with("kc_") && client_id.len() == 25, "{body}");
        assert!(body.get("client_secret").is_none(), "a public client has no secret: {body}");
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert_eq!(body["client_name"], "Claude");
        assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));

        let client = app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, client_id)
            .await.expect("db").expect("known");
        assert_eq!(client.kind, ClientKind::Registered);
        assert_eq!(client.name, "Claude");
        assert_eq!(client.origin, "https://claude.ai");
        assert!(!client.is_confidential());
        assert!(client.authenticate(&app.state.peppers, None));
        assert!(!client.authenticate(&app.state.peppers, Some("anything")));
        assert!(client.redirect_allowed("https://claude.ai/api/mcp/auth_callback"));
        assert!(client.redirect_allowed("http://127.0.0.1:61234/callback"));
        assert!(!client.redirect_allowed("https://claude.ai/api/mcp/auth_callback?x=1"));
        assert!(!client.redirect_allowed("https://evil.example/api/mcp/auth_callback"));
        assert!(client.allows_grant("refresh_token"));
    }

    async fn a_confidential_client_sees_its_secret_once_and_only_a_hash_is_kept(app: TestApp) {
        let metadata = json!({"redirect_uris": ["https://app.example.com/cb"],
                              "token_endpoint_auth_method": "client_secret_post"});
        let body = expect_json(register(&app, "acme", &metadata).await, StatusCode::CREATED).await;
        let secret = body["client_secret"].as_str().expect("secret shown once");
        assert!(secret.starts_with("kcs_") && secret.len() > 40, "{body}");
        assert_eq!(body["client_secret_expires_at"], 0);
        assert_eq!(body["client_name"], "https://app.example.com", "no name: the origin stands in");
        let client_id = body["client_id"].as_str().expect("client_id");

        let row: (Option<String>, String, String) = sqlx::query_as(
            "SELECT secret_hash, name, redirect_uris FROM oauth_clients WHERE id = $1")
            .bind(client_id).fetch_one(app.state.pool()).await.expect("row");
        let hash = row.0.expect("a hash");
        assert!(!hash.contains(secret) && !hash.contains(&secret[4..]), "the secret itself is never stored");
        let audit: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT actor, tool FROM audit_events WHERE action = 'oauth.client_created'")
            .fetch_all(app.state.pool()).await.expect("audit");
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].0, format!("oauth-client:{client_id}"));
        assert!(!audit[0].1.as_deref().unwrap_or("").contains(secret));

        let client = app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, client_id)
            .await.expect("db").expect("known");
        assert!(client.is_confidential());
        assert_eq!(client.auth_method, AuthMethod::ClientSecretPost);
        assert!(client.authenticate(&app.state.peppers, Some(secret)));
        assert!(!client.authenticate(&app.state.peppers, None));
        let mut wrong = secret.to_owned();
        wrong.pop();
        wrong.push('x');
        assert!(!client.authenticate(&app.state.peppers, Some(&wrong)));
        assert!(!client.authenticate(&app.state.peppers, Some("")));
    }

    async fn refused_metadata_names_its_error_and_stores_nothing(app: TestApp) {
        for (metadata, error) in [
            (json!({}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["javascript:alert(document.domain)"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["data:text/html,<script>alert(1)</script>"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["http://attacker.example/cb"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["https://app.example.com/cb#fragment"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["https://ok.example/cb", "file:///etc/passwd"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": "https://not-an-array.example/cb"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "grant_types": ["client_credentials"]}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "grant_types": ["implicit"]}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "response_types": ["token"]}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "client_name": "x".repeat(101)}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "client_name": "Good\u{202e}lanigiro"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://e.example/cb"], "client_uri": "javascript:alert(1)"}), "invalid_client_metadata"),
            (json!(["not", "an", "object"]), "invalid_client_metadata"),
        ] {
            let res = register(&app, "acme", &metadata).await;
            let body = expect_oauth_error(res, StatusCode::BAD_REQUEST, error).await;
            assert!(body.get("client_id").is_none(), "{metadata}: {body}");
        }
        // Not JSON: a browser form cannot register a client.
        let res = app.client.post(app.url("/oauth/acme/register"))
            .form(&[("redirect_uris", "https://e.example/cb")]).send().await.expect("form");
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        // Too big to read.
        let huge = json!({"redirect_uris": ["https://e.example/cb"], "padding": "x".repeat(17 * 1024)});
        let res = register(&app, "acme", &huge).await;
        expect_oauth_error(res, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
        let uris: Vec<String> = (0..11).map(|i| format!("https://e.example/{i}")).collect();
        let res = register(&app, "acme", &json!({"redirect_uris": uris})).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_redirect_uri").await;

        assert_eq!(stored_clients(&app).await, 0, "no partial state");
        let res = register(&app, "nosuch", &json!({"redirect_uris": ["https://e.example/cb"]})).await;
        expect_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }

    async fn a_tenant_that_closed_registration_refuses_it_and_others_are_unaffected(app: TestApp) {
        app.create_tenant("globex").await;
        let actor = Actor::Cli;
        set_registration(&app, false, &actor).await;
        let metadata = json!({"redirect_uris": ["https://e.example/cb"], "token_endpoint_auth_method": "none"});
        let res = register(&app, "acme", &metadata).await;
        let body = expect_oauth_error(res, StatusCode::FORBIDDEN, "access_denied").await;
        assert!(body["error_description"].as_str().expect("d").contains("pre-register"), "{body}");
        assert_eq!(stored_clients(&app).await, 0, "nothing stored");
        expect_json(register(&app, "globex", &metadata).await, StatusCode::CREATED).await;
        set_registration(&app, true, &actor).await;
        expect_json(register(&app, "acme", &metadata).await, StatusCode::CREATED).await;
    }

    async fn another_tenants_client_is_unknown(app: TestApp) {
        let client_id = register_public(&app, &["https://e.example/cb"]).await;
        let globex = app.create_tenant("globex").await;
        let there = app.state.oauth_clients.resolve(app.state.pool(), &globex.id, &client_id).await.expect("db");
        assert_eq!(there, Err(ClientRefused::Unknown));
        for unknown in ["kc_AAAAAAAAAAAAAAAAAAAAAA", "not-a-client", "", "0123456789abcdef"] {
            let res = app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, unknown).await.expect("db");
            assert_eq!(res, Err(ClientRefused::Unknown), "{unknown}");
        }
        let nowhere = TenantId::new("no-such-tenant");
        let res = app.state.oauth_clients.resolve(app.state.pool(), &nowhere, &client_id).await.expect("db");
        assert_eq!(res, Err(ClientRefused::Unknown));
    }

    async fn a_burst_at_the_tenant_cap_stores_exactly_the_room_left(app: TestApp) {
        let clock = app.clock.clone();
        let db = app.stop().await;
        let env = [("KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT", "3".to_owned())];
        let app = TestApp::spawn_with(db, &env, Some(clock)).await;
        let mut burst = JoinSet::new();
        for i in 0..10 {
            let (client, url) = (app.client.clone(), app.url("/oauth/acme/register"));
            burst.spawn(async move {
                let metadata = json!({"redirect_uris": [format!("https://e.example/{i}")], "token_endpoint_auth_method": "none"});
                let res = client.post(url).json(&metadata).send().await.expect("register");
                let status = res.status();
                (status, res.json::<Value>().await.expect("json"))
            });
        }
        let answers = burst.join_all().await;
        let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(created, 3, "{answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert!(body["error_description"].as_str().expect("d").contains("KEYSMITH_MAX_OAUTH_CLIENTS_PER_TENANT"));
        }
        assert_eq!(stored_clients(&app).await, 3);
    }

    async fn one_address_registers_at_most_twenty_an_hour(app: TestApp) {
        for i in 0..20 {
            let metadata = json!({"redirect_uris": [format!("https://e.example/{i}")], "token_endpoint_auth_method": "none"});
            expect_json(register(&app, "acme", &metadata).await, StatusCode::CREATED).await;
        }
        let metadata = json!({"redirect_uris": ["https://e.example/late"], "token_endpoint_auth_method": "none"});
        let res = register(&app, "acme", &metadata).await;
        expect_oauth_error(res, StatusCode::TOO_MANY_REQUESTS, "invalid_request").await;
        assert_eq!(stored_clients(&app).await, 20);
        // An hour later (and past the backoff) the address may register again.
        app.clock.advance(time::Duration::hours(2));
        expect_json(register(&app, "acme", &metadata).await, StatusCode::CREATED).await;
    }
}
