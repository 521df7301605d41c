//! The per-tenant OAuth authorization server: discovery, the
//! client-credentials grant, introspection and revocation.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// How a client authenticates at the token endpoint.
pub enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
}

/// `POST /oauth/{tenant}/{endpoint}` with `auth` and the form `params`.
pub async fn oauth_post(
    app: &TestApp,
    tenant: &str,
    endpoint: &str,
    auth: Auth<'_>,
    params: &[(&str, &str)],
) -> Response {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let request = app
        .client
        .post(app.url(&format!("/oauth/{tenant}/{endpoint}")));
    let request = match auth {
        Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => {
            form.extend([("client_id", id), ("client_secret", secret)]);
            request
        }
    };
    request.form(&form).send().await.expect("request")
}

/// A client-credentials token for `key` (its 201 body from the API), bound
/// to `resource`, with `scope` if given; returns the token response.
pub async fn client_token(
    app: &TestApp,
    tenant: &str,
    key: &Value,
    resource: &str,
    scope: Option<&str>,
) -> Value {
    let mut params = vec![("grant_type", "client_credentials"), ("resource", resource)];
    params.extend(scope.map(|s| ("scope", s)));
    let (id, secret) = (
        key["id"].as_str().expect("id"),
        key["key"].as_str().expect("key"),
    );
    let res = oauth_post(app, tenant, "token", Auth::Basic(id, secret), &params).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    expect_json(res, StatusCode::OK).await
}

/// Asserts an OAuth error answer (RFC 6749 §5.2).
pub async fn expect_oauth_error(res: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = expect_json(res, status).await;
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// A key of a second tenant, `globex` (its 201 body).
pub async fn globex_key(app: &TestApp) -> Value {
    let globex = app.create_tenant("globex").await;
    let admin = app.management_key(&globex).await;
    let body = json!({"name": "g", "owner_email": "g@globex.test"});
    let res = app
        .post_as(&admin, "/api/v1/tenants/globex/service-users", &body)
        .await;
    let su = expect_json(res, StatusCode::CREATED).await["id"].clone();
    let body = json!({"service_user_id": su, "name": "g"});
    let res = app
        .post_as(&admin, "/api/v1/tenants/globex/keys", &body)
        .await;
    expect_json(res, StatusCode::CREATED).await
}

const RESOURCE: &str = "https://mcp.example.com/mcp";

both_engines! {
    async fn discovery_documents_answer_at_every_url_form(app: TestApp) {
        let issuer = format!("{}/oauth/acme", app.state.config.public_url);
        let mut documents = Vec::new();
        for path in [
            "/.well-known/oauth-authorization-server/oauth/acme",
            "/oauth/acme/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration/oauth/acme",
            "/oauth/acme/.well-known/openid-configuration",
        ] {
            let res = app.client.get(app.url(path)).send().await.expect("metadata");
            documents.push(expect_json(res, StatusCode::OK).await);
            let res = app.client.get(app.url(&path.replace("acme", "nobody"))).send().await.expect("metadata");
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path} of an unknown tenant");
        }
        assert!(documents.windows(2).all(|pair| pair[0] == pair[1]), "one document everywhere");
        let doc = &documents[0];
        assert_eq!(doc["issuer"], issuer.as_str());
        for (field, endpoint) in [
            ("authorization_endpoint", "authorize"), ("token_endpoint", "token"),
            ("registration_endpoint", "register"), ("revocation_endpoint", "revoke"),
            ("introspection_endpoint", "introspect"),
        ] {
            assert_eq!(doc[field], format!("{issuer}/{endpoint}"), "{field}");
        }
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["grant_types_supported"], json!(["authorization_code", "refresh_token", "client_credentials"]));
        assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["none", "client_secret_basic", "client_secret_post"]));
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["scopes_supported"], json!(["tools:*", "resources:*", "prompts:*"]));
        assert!(doc.get("jwks_uri").is_none(), "opaque tokens: no JWKS");

        // The authorization endpoint answers a request naming no client with a page, never a redirect.
        let res = app.client.get(app.url("/oauth/acme/authorize?response_type=code")).send().await.expect("authorize");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get("location").is_none());
    }

    async fn client_credentials_by_basic_and_post(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "files/*"]})).await;
        let (id, secret) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"));
        let mut tokens = Vec::new();
        for auth in [Auth::Basic(id, secret), Auth::Post(id, secret)] {
            let res = oauth_post(&app, "acme", "token", auth, &[("grant_type", "client_credentials"), ("resource", "https://MCP.example.com/mcp/")]).await;
            assert_eq!(res.headers()["cache-control"], "no-store");
            let body = expect_json(res, StatusCode::OK).await;
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(body["expires_in"], 600, "ten minutes by default");
            assert_eq!(body["scope"], "tools:whoami tools:files/*", "the key's whole reach");
            tokens.push(body["access_token"].as_str().expect("token").to_owned());
        }
        assert_ne!(tokens[0], tokens[1]);
        for token in &tokens {
            assert!(token.starts_with("ks_at_"), "{token}");
            let verdict = app.verify(token, Some("files/read")).await;
            assert_eq!(verdict["code"], "valid", "{verdict}");
            assert_eq!(verdict["key_id"], id, "the parent key");
            assert_eq!(verdict["scopes"], json!([]), "no management scope");
            assert_eq!(verdict["token"]["resource"], RESOURCE, "bound to the canonical resource");
            assert_eq!(app.verify(token, Some("echo")).await["code"], "tool_not_allowed");
        }
        // Only the HMAC is stored, never the token; the issuance is audited under the key.
        let dump = app.db.dump();
        assert!(!dump.contains(&secret_of_token(&tokens[0])), "a token's secret is in the database");
        let (issued,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.token' AND key_id = $1")
            .bind(id).fetch_one(app.state.pool()).await.expect("audit");
        assert_eq!(issued, 2);
        // The management API is not for tokens.
        let res = app.get_as(&tokens[0], "/api/v1/tenants/acme/keys").await;
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    async fn a_bad_client_gets_one_answer(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await;
        let other = app.create_key(&su, json!({"name": "other"})).await;
        let revoked = app.create_key(&su, json!({"name": "revoked"})).await;
        app.revoke_key(revoked["id"].as_str().expect("id"), "gone").await;
        let foreign = globex_key(&app).await;
        let unknown = keysmith_verify::ApiKey::generate(&keysmith_verify::KeyPrefix::default());
        let id = key["id"].as_str().expect("id");
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let grant = [("grant_type", "client_credentials"), ("resource", RESOURCE)];
        let mut answers = Vec::new();
        for (client_id, secret) in [
            (id, other["key"].as_str().expect("key")),
            (unknown.key_id(), unknown.expose()),
            (revoked["id"].as_str().expect("id"), revoked["key"].as_str().expect("key")),
            (foreign["id"].as_str().expect("id"), foreign["key"].as_str().expect("key")),
            (id, token["access_token"].as_str().expect("token")),
            (id, "garbage"),
        ] {
            for auth in [Auth::Basic(client_id, secret), Auth::Post(client_id, secret)] {
                let res = oauth_post(&app, "acme", "token", auth, &grant).await;
                assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"keysmith\"");
                answers.push(expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await);
            }
        }
        assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "one answer for every failure: {answers:?}");
        let res = app.client.post(app.url("/oauth/acme/token")).form(&grant).send().await.expect("token");
        expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
        // Two ways at once, and the wrong grant types.
        let secret = key["key"].as_str().expect("key");
        let res = app.client.post(app.url("/oauth/acme/token")).basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("resource", RESOURCE), ("client_secret", secret)]).send().await.expect("token");
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        let res = oauth_post(&app, "acme", "token", Auth::Basic(id, secret), &[("grant_type", "password"), ("resource", RESOURCE)]).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
        // A key is no client of the authorization-code grants.
        for grant_type in ["authorization_code", "refresh_token"] {
            let res = oauth_post(&app, "acme", "token", Auth::Basic(id, secret), &[("grant_type", grant_type), ("resource", RESOURCE)]).await;
            expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
        }
        // A JSON body is not a form.
        let res = app.client.post(app.url("/oauth/acme/token")).basic_auth(id, Some(secret)).json(&json!({"grant_type": "client_credentials"})).send().await.expect("token");
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        // A management key is no OAuth client.
        let admin_id = keysmith_verify::ApiKey::parse(&app.admin_key).expect("key").key_id().to_owned();
        let res = oauth_post(&app, "acme", "token", Auth::Basic(&admin_id, &app.admin_key), &grant).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "unauthorized_client").await;
        assert_eq!(app.count("oauth_tokens").await, 1, "only the one good request minted a token");
    }

    async fn the_resource_is_required_and_checked(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await;
        let (id, secret) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"));
        for resource in [None, Some("mcp.example.com"), Some("http://mcp.example.com/mcp"), Some("https://mcp.example.com/mcp#x"), Some("https://u@mcp.example.com/")] {
            let mut params = vec![("grant_type", "client_credentials")];
            params.extend(resource.map(|r| ("resource", r)));
            let res = oauth_post(&app, "acme", "token", Auth::Basic(id, secret), &params).await;
            expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_target").await;
        }
        let res = oauth_post(&app, "acme", "token", Auth::Basic(id, secret),
            &[("grant_type", "client_credentials"), ("resource", RESOURCE), ("resource", "https://b.example.com")]).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_target").await;
        assert_eq!(app.count("oauth_tokens").await, 0, "nothing written");
        let loopback = client_token(&app, "acme", &key, "http://127.0.0.1:9000/mcp", None).await;
        assert_eq!(app.verify(loopback["access_token"].as_str().expect("token"), None).await["token"]["resource"], "http://127.0.0.1:9000/mcp");
    }

    async fn scopes_narrow_the_key_and_never_widen_it(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let limited = app.create_key(&su, json!({"allowed_tools": ["whoami", "files/*"]})).await;
        let narrowed = client_token(&app, "acme", &limited, RESOURCE, Some("tools:files/read")).await;
        assert_eq!(narrowed["scope"], "tools:files/read");
        let token = narrowed["access_token"].as_str().expect("token");
        assert_eq!(app.verify(token, Some("files/read")).await["code"], "valid");
        assert_eq!(app.verify(token, Some("files/write")).await["code"], "tool_not_allowed");
        assert_eq!(app.verify(token, Some("whoami")).await["code"], "tool_not_allowed");
        assert_eq!(app.verify(token, None).await["allowed_tools"], json!(["files/read"]));
        let (id, secret) = (limited["id"].as_str().expect("id"), limited["key"].as_str().expect("key"));
        for beyond in ["tools:echo", "tools:*", "tools:whoami tools:file*", "prompts:greet", "resources:*", "openid", "tools:a b*c"] {
            let res = oauth_post(&app, "acme", "token", Auth::Post(id, secret), &[("grant_type", "client_credentials"), ("resource", RESOURCE), ("scope", beyond)]).await;
            expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_scope").await;
        }
        // A key without allowlists reaches everything; a token that names
        // only resources reaches no tool.
        let open = app.create_key(&su, json!({"name": "open"})).await;
        let all = client_token(&app, "acme", &open, RESOURCE, None).await;
        assert_eq!(all["scope"], "tools:* resources:* prompts:*");
        let resources_only = client_token(&app, "acme", &open, RESOURCE, Some("resources:test://static* prompts:greet")).await;
        let verdict = app.verify(resources_only["access_token"].as_str().expect("token"), Some("whoami")).await;
        assert_eq!(verdict["code"], "tool_not_allowed");
        assert_eq!(verdict["allowed_resources"], json!(["test://static*"]), "{verdict}");
        assert_eq!(verdict["allowed_prompts"], json!(["greet"]));
        // A key naming resources: a token may narrow them, never widen them.
        let resources = app.create_key(&su, json!({"name": "docs", "allowed_resources": ["file:///docs/*"]})).await;
        client_token(&app, "acme", &resources, RESOURCE, Some("resources:file:///docs/a.md")).await;
        for beyond in ["resources:file:///*", "resources:file:///etc/passwd", "tools:*"] {
            let (id, secret) = (resources["id"].as_str().expect("id"), resources["key"].as_str().expect("key"));
            let res = oauth_post(&app, "acme", "token", Auth::Post(id, secret), &[("grant_type", "client_credentials"), ("resource", RESOURCE), ("scope", beyond)]).await;
            expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_scope").await;
        }
    }

    async fn revoking_or_disabling_the_parent_stops_its_tokens(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await;
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let token = token["access_token"].as_str().expect("token");
        assert_eq!(app.verify_code(token).await, "valid");
        app.revoke_key(key["id"].as_str().expect("id"), "leaked").await;
        assert_eq!(app.verify_code(token).await, "revoked");

        let key = app.create_key(&su, json!({"name": "second"})).await;
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let token = token["access_token"].as_str().expect("token");
        let res = app.post(&format!("/api/v1/tenants/acme/service-users/{su}/disable"), &json!({})).await;
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(app.verify_code(token).await, "disabled");
        let res = app.post(&format!("/api/v1/tenants/acme/service-users/{su}/enable"), &json!({})).await;
        assert!(res.status().is_success());
        assert_eq!(app.verify_code(token).await, "valid");

        // Rotated: its tokens work through the overlap, and stop at the cutoff.
        let rotated = app.rotate_key(key["id"].as_str().expect("id")).await;
        assert_eq!(rotated.status(), StatusCode::CREATED);
        assert_eq!(app.verify_code(token).await, "valid");
        sqlx::query("UPDATE api_keys SET cutoff_at = $1 WHERE id = $2")
            .bind(keysmith::domain::UnixTime::from(app.now()).secs())
            .bind(key["id"].as_str().expect("id")).execute(app.state.pool()).await.expect("cutoff now");
        assert_eq!(app.verify_code(token).await, "revoked");

        // And a token ends on its own after ten minutes.
        let key = app.create_key(&su, json!({"name": "third"})).await;
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let token = token["access_token"].as_str().expect("token");
        app.clock.advance(time::Duration::minutes(10));
        assert_eq!(app.verify_code(token).await, "expired");
    }

    async fn introspection_answers_for_its_own_tenant_only(app: TestApp) {
        let verifier = app.management_key_with(&app.tenant, keysmith::domain::Scope::verify()).await;
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"]})).await;
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        let token = token["access_token"].as_str().expect("token");
        let introspect = |bearer: String, tenant: &'static str, token: String| {
            app.client.post(app.url(&format!("/oauth/{tenant}/introspect"))).bearer_auth(bearer).form(&[("token", token)]).send()
        };
        let res = introspect(verifier.clone(), "acme", token.to_owned()).await.expect("introspect");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let active = expect_json(res, StatusCode::OK).await;
        assert_eq!(active["active"], true, "{active}");
        assert_eq!(active["client_id"], key["id"]);
        assert_eq!(active["scope"], "tools:whoami");
        assert_eq!(active["aud"], RESOURCE);
        assert_eq!(active["sub"], su.as_str());
        assert_eq!(active["iss"], format!("{}/oauth/acme", app.state.config.public_url));
        assert_eq!(active["token_type"], "Bearer");
        assert!(active["exp"].as_i64().is_some());
        for inactive in [key["key"].as_str().expect("key"), "garbage"] {
            let res = introspect(verifier.clone(), "acme", inactive.to_owned()).await.expect("introspect");
            assert_eq!(expect_json(res, StatusCode::OK).await, json!({"active": false}));
        }
        // Another tenant's token is inactive here; another tenant's issuer is 404.
        let globex = app.create_tenant("globex").await;
        let globex_verifier = app.management_key_with(&globex, keysmith::domain::Scope::verify()).await;
        let res = introspect(globex_verifier.clone(), "globex", token.to_owned()).await.expect("introspect");
        assert_eq!(expect_json(res, StatusCode::OK).await, json!({"active": false}));
        let res = introspect(globex_verifier, "acme", token.to_owned()).await.expect("introspect");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.client.post(app.url("/oauth/acme/introspect")).form(&[("token", token)]).send().await.expect("introspect");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // A token is no management key, not even for introspection.
        let res = introspect(token.to_owned(), "acme", token.to_owned()).await.expect("introspect");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_client_revokes_its_own_tokens_only(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({})).await;
        let other = app.create_key(&su, json!({"name": "other"})).await;
        let mine = client_token(&app, "acme", &key, RESOURCE, None).await["access_token"].as_str().expect("token").to_owned();
        let theirs = client_token(&app, "acme", &other, RESOURCE, None).await["access_token"].as_str().expect("token").to_owned();
        let (id, secret) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"));
        for token in [theirs.as_str(), "garbage", key["key"].as_str().expect("key")] {
            let res = oauth_post(&app, "acme", "revoke", Auth::Post(id, secret), &[("token", token)]).await;
            assert_eq!(res.status(), StatusCode::OK, "RFC 7009: the same answer");
        }
        assert_eq!(app.verify_code(&theirs).await, "valid", "another client's token is untouched");
        assert_eq!(app.verify_code(secret).await, "valid", "a key is not revoked here");
        let res = oauth_post(&app, "acme", "revoke", Auth::Basic(id, secret), &[("token", &mine), ("token_type_hint", "access_token")]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(app.verify_code(&mine).await, "revoked");
        assert_eq!(app.verify_code(secret).await, "valid", "the key itself lives on");
        // Another tenant's issuer does not know this client.
        app.create_tenant("globex").await;
        let res = oauth_post(&app, "globex", "revoke", Auth::Post(id, secret), &[("token", &theirs)]).await;
        expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_eq!(app.verify_code(&theirs).await, "valid");
        let res = oauth_post(&app, "acme", "revoke", Auth::Post(id, "garbage"), &[("token", &theirs)]).await;
        expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }

    async fn a_burst_of_token_requests_stops_at_the_live_token_cap(app: TestApp) {
        let su = app.create_service_user("agent").await;
        let key = app.create_key(&su, json!({"quota": {"calls": 3, "per": "day"}})).await;
        let cap = keysmith::domain::oauth::MAX_LIVE_TOKENS_PER_KEY;
        let (id, secret) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"));
        let burst = (0..cap + 10).map(|_| oauth_post(&app, "acme", "token", Auth::Basic(id, secret), &[("grant_type", "client_credentials"), ("resource", RESOURCE)]));
        let statuses: Vec<StatusCode> = futures_util::future::join_all(burst).await.iter().map(Response::status).collect();
        let issued = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!((issued, refused), (usize::try_from(cap).expect("cap"), 10), "{statuses:?}");
        assert_eq!(app.count("oauth_tokens").await, cap);
        // Once they expire, the key may have new ones.
        app.clock.advance(time::Duration::minutes(10));
        client_token(&app, "acme", &key, RESOURCE, None).await;
    }
}

/// The secret part of a token, as the token format defines it.
fn secret_of_token(token: &str) -> String {
    let token = keysmith_verify::OAuthToken::parse(token).expect("a token");
    String::from_utf8(token.secret().to_vec()).expect("base62")
}
