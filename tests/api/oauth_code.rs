//! The authorization-code flow: consent by a person of the tenant, codes,
//! the token pair, refresh rotation, and what a grant leaves behind (its
//! listing, audit and the email to the service user's owner).

use base64::Engine as _;
use keysmith::domain::{
    Actor,
    oauth::clients::store::{self, ClientMetadata, RawMetadata},
    users::Role,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::{TestApp, expect_json},
    oauth::expect_oauth_error,
};

/// The MCP server the tests' tokens are for.
pub const RESOURCE: &str = "https://mcp.example.com/mcp";
/// A loopback redirect (RFC 8252): any port is accepted for it.
pub const REDIRECT: &str = "http://127.0.0.1:7/callback";

/// An OAuth client of `acme`, pre-registered: its id and, if confidential,
/// its secret.
pub struct Connector {
    pub client_id: String,
    pub secret: Option<String>,
}

pub async fn connector(app: &TestApp, auth_method: &str, redirect: &str) -> Connector {
    let metadata = ClientMetadata::parse(RawMetadata {
        redirect_uris: Some(vec![redirect.to_owned()]),
        client_name: Some("Test Connector".into()),
        token_endpoint_auth_method: Some(auth_method.into()),
        ..Default::default()
    })
    .expect("metadata");
    let created = store::create(
        app.state.pool(),
        &app.state.peppers,
        &app.tenant.id,
        metadata,
        Some(&Actor::Cli),
        100,
        app.now(),
    )
    .await
    .expect("store")
    .unwrap_or_else(|_| panic!("client stored"));
    Connector {
        client_id: created.client.client_id,
        secret: created.secret.map(|s| s.expose().to_owned()),
    }
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("v{}", keysmith::domain::random::base62(60));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorization request's query for `client`, for [`RESOURCE`].
pub fn authorize_query(
    client: &str,
    challenge: &str,
    state: &str,
    scope: &str,
) -> Vec<(String, String)> {
    authorize_query_for(client, challenge, state, scope, RESOURCE)
}

/// The authorization request's query for `client` and `resource`.
pub fn authorize_query_for(
    client: &str,
    challenge: &str,
    state: &str,
    scope: &str,
    resource: &str,
) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("resource", resource),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

pub fn authorize_url(app: &TestApp, query: &[(String, String)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    app.url(&format!("/oauth/acme/authorize?{encoded}"))
}

/// An owner of `acme`, signed in (a cookie-keeping client that follows no redirect).
pub async fn signed_in_owner(app: &TestApp) -> reqwest::Client {
    admin_user(app, "owner@acme.test", Role::Owner).await;
    let client = browser();
    let res = sign_in(app, &client, "owner@acme.test", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    client
}

/// The value of the hidden field `name` on a page.
pub fn field_of(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let (_, rest) = html
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{name} on the page"));
    rest.split('"').next().expect("value").to_owned()
}

/// The consent page's answer: `extra` fields besides the request, the
/// page's CSRF and form tokens.
pub async fn answer(
    app: &TestApp,
    person: &reqwest::Client,
    query: &[(String, String)],
    page: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut form: Vec<(String, String)> = query.to_vec();
    form.push(("csrf".into(), csrf_of(page)));
    form.push(("form_token".into(), field_of(page, "form_token")));
    form.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    person
        .post(app.url("/oauth/acme/authorize"))
        .header("origin", &app.base)
        .form(&form)
        .send()
        .await
        .expect("answer")
}

/// The query parameters of a redirect to the client.
pub fn redirect_params(res: &Response) -> Vec<(String, String)> {
    let location = res.headers()["location"].to_str().expect("ascii");
    assert!(location.starts_with(REDIRECT), "to the client: {location}");
    let url = url::Url::parse(location).expect("url");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A code for `client`, approved by a signed-in owner for the service user
/// `service_user` with `scopes` ticked.
pub async fn approved_code(
    app: &TestApp,
    person: &reqwest::Client,
    client: &str,
    challenge: &str,
    service_user: &str,
    scopes: &[&str],
) -> String {
    approved_code_for(
        app,
        person,
        (client, challenge),
        service_user,
        scopes,
        RESOURCE,
    )
    .await
}

/// [`approved_code`] for another resource.
pub async fn approved_code_for(
    app: &TestApp,
    person: &reqwest::Client,
    (client, challenge): (&str, &str),
    service_user: &str,
    scopes: &[&str],
    resource: &str,
) -> String {
    let query = authorize_query_for(
        client,
        challenge,
        "st-1",
        "tools:whoami tools:files/* prompts:*",
        resource,
    );
    let page = person
        .get(authorize_url(app, &query))
        .send()
        .await
        .expect("consent");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("html");
    let mut extra = vec![("decision", "approve"), ("service_user_id", service_user)];
    extra.extend(scopes.iter().map(|s| ("approved_scope", *s)));
    let res = answer(app, person, &query, &page, &extra).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        res.text().await
    );
    let params = redirect_params(&res);
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(
        param(&params, "iss"),
        Some(format!("{}/oauth/acme", app.state.config.public_url).as_str())
    );
    param(&params, "code").expect("code").to_owned()
}

/// `POST /oauth/acme/token` as `client` (a public one: its id alone).
pub async fn token_request(app: &TestApp, client: &Connector, params: &[(&str, &str)]) -> Response {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("client_id", &client.client_id));
    let request = app.client.post(app.url("/oauth/acme/token"));
    let request = match &client.secret {
        Some(secret) => request.basic_auth(&client.client_id, Some(secret)),
        None => request,
    };
    request.form(&form).send().await.expect("token")
}

pub async fn redeem(app: &TestApp, client: &Connector, code: &str, verifier: &str) -> Response {
    token_request(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", RESOURCE),
        ],
    )
    .await
}

pub async fn refresh(app: &TestApp, client: &Connector, refresh_token: &str) -> Response {
    token_request(
        app,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Introspection of `token` by the tenant's management key.
pub async fn introspect(app: &TestApp, token: &str) -> Value {
    let res = app
        .client
        .post(app.url("/oauth/acme/introspect"))
        .bearer_auth(&app.admin_key)
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    expect_json(res, StatusCode::OK).await
}

/// A whole flow: a public client, a service user `agent`, an approval of
/// `tools:whoami`, and the token answer.
pub async fn connected(app: &TestApp) -> (Connector, String, Value) {
    let client = connector(app, "none", REDIRECT).await;
    let su = app.create_service_user("agent").await;
    let person = signed_in_owner(app).await;
    let (verifier, challenge) = pkce();
    let code = approved_code(
        app,
        &person,
        &client.client_id,
        &challenge,
        &su,
        &["tools:whoami"],
    )
    .await;
    let res = redeem(app, &client, &code, &verifier).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens = expect_json(res, StatusCode::OK).await;
    (client, su, tokens)
}

async fn count_where(app: &TestApp, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(app.state.pool())
        .await
        .expect("count");
    n
}

both_engines! {
    async fn a_person_approves_and_the_client_gets_a_token_pair(app: TestApp) {
        let (client, su, tokens) = connected(&app).await;
        let access = tokens["access_token"].as_str().expect("access");
        assert!(access.starts_with("ks_at_"), "{access}");
        assert!(tokens["refresh_token"].as_str().expect("refresh").starts_with("ks_rt_"));
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 600, "the tenant's default: 10 minutes");
        assert_eq!(tokens["scope"], "tools:whoami", "only what the person ticked");

        let seen = introspect(&app, access).await;
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["aud"], RESOURCE);
        assert_eq!(seen["sub"], su.as_str());
        assert_eq!(seen["scope"], "tools:whoami");
        // The parent key reaches only the approved scope: the token cannot call another tool.
        let verdict = app.verify(access, Some("files/read")).await;
        assert_eq!(verdict["code"], "tool_not_allowed", "{verdict}");
        assert_eq!(app.verify(access, Some("whoami")).await["valid"], true);

        // Listed, with who approved it.
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        let grant = &list["items"][0];
        assert_eq!(grant["client_id"], client.client_id.as_str());
        assert_eq!(grant["client_name"], "Test Connector");
        assert_eq!(grant["service_user_id"], su.as_str());
        assert_eq!(grant["service_user_name"], "agent");
        assert_eq!(grant["scopes"], json!(["tools:whoami"]));
        assert_eq!(grant["approved_by"], "user:owner@acme.test");
        assert_eq!(grant["resource"], RESOURCE);
        assert!(grant["last_used_at"].is_string(), "{grant}");
        assert!(grant["revoked_at"].is_null());
        for action in ["oauth.consent", "oauth.token"] {
            let n = count_where(&app, &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'")).await;
            assert_eq!(n, 1, "{action} audited once");
        }
        // Nothing secret stored in clear.
        let dump = app.db.dump();
        for secret in [access, tokens["refresh_token"].as_str().expect("refresh")] {
            let token = keysmith_verify::OAuthToken::parse(secret).expect("token");
            let secret = std::str::from_utf8(token.secret()).expect("ascii");
            assert!(!dump.contains(secret), "a token's secret in the database");
        }
    }

    async fn refresh_tokens_rotate_and_a_reused_one_ends_the_grant(app: TestApp) {
        let (client, _, first) = connected(&app).await;
        let old_refresh = first["refresh_token"].as_str().expect("refresh").to_owned();
        let second = expect_json(refresh(&app, &client, &old_refresh).await, StatusCode::OK).await;
        let new_refresh = second["refresh_token"].as_str().expect("refresh").to_owned();
        assert_ne!(new_refresh, old_refresh, "rotated on every use");
        assert_eq!(second["scope"], "tools:whoami");
        let new_access = second["access_token"].as_str().expect("access").to_owned();
        assert_eq!(introspect(&app, &new_access).await["active"], true);

        // The spent refresh token comes back (stolen): the whole grant ends.
        let res = refresh(&app, &client, &old_refresh).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(introspect(&app, &new_access).await["active"], false, "every token of the grant stops");
        let res = refresh(&app, &client, &new_refresh).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(list["items"][0]["revoked_reason"], "refresh token reused");
        let n = count_where(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.refresh_reuse'").await;
        assert_eq!(n, 1);
    }

    async fn a_refresh_asks_for_less_never_more_and_idles_out(app: TestApp) {
        let (client, _, first) = connected(&app).await;
        let rt = first["refresh_token"].as_str().expect("refresh");
        let res = token_request(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", rt), ("scope", "tools:files/read")]).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_scope").await;
        // Refused for scope before it was spent: it still works.
        let next = expect_json(refresh(&app, &client, rt).await, StatusCode::OK).await;
        // Idle past the tenant's 30 days: expired.
        app.clock.advance(time::Duration::days(31));
        let res = refresh(&app, &client, next["refresh_token"].as_str().expect("refresh")).await;
        let body = expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert!(body["error_description"].as_str().expect("text").contains("expired"), "{body}");
    }

    async fn a_client_revokes_its_access_token_or_its_whole_grant(app: TestApp) {
        let (client, _, first) = connected(&app).await;
        let stranger = connector(&app, "none", REDIRECT).await;
        let revoke = |who: &Connector, token: &str| {
            let form = [("token", token.to_owned()), ("client_id", who.client_id.clone())];
            app.client.post(app.url("/oauth/acme/revoke")).form(&form).send()
        };
        let access = first["access_token"].as_str().expect("access");
        // Another client's revocation is ignored, with the same answer.
        assert_eq!(revoke(&stranger, access).await.expect("revoke").status(), StatusCode::OK);
        assert_eq!(introspect(&app, access).await["active"], true);
        assert_eq!(revoke(&client, access).await.expect("revoke").status(), StatusCode::OK);
        assert_eq!(introspect(&app, access).await["active"], false);
        // The grant lives on: a refresh still works.
        let second = expect_json(refresh(&app, &client, first["refresh_token"].as_str().expect("rt")).await, StatusCode::OK).await;
        // Its refresh token revoked: the whole grant ends (RFC 7009 §2.1).
        let rt = second["refresh_token"].as_str().expect("rt");
        assert_eq!(revoke(&client, rt).await.expect("revoke").status(), StatusCode::OK);
        assert_eq!(introspect(&app, second["access_token"].as_str().expect("access")).await["active"], false);
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(list["items"][0]["revoked_reason"], "revoked by its client");
        // No client at all is not a client.
        let res = app.client.post(app.url("/oauth/acme/revoke")).form(&[("token", rt)]).send().await.expect("revoke");
        assert!(res.status().is_client_error(), "{}", res.status());
    }

    async fn access_token_lifetime_follows_the_tenant_policy(app: TestApp) {
        for bad in [json!({"oauth_access_token_minutes": 4}), json!({"oauth_access_token_minutes": 1441}),
                    json!({"oauth_refresh_idle_days": 40, "oauth_refresh_absolute_days": 30})] {
            let res = app.client.patch(app.url("/api/v1/tenants/acme")).bearer_auth(&app.admin_key).json(&bad).send().await.expect("patch");
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let res = app.client.patch(app.url("/api/v1/tenants/acme")).bearer_auth(&app.admin_key)
            .json(&json!({"oauth_access_token_minutes": 5})).send().await.expect("patch");
        let policy = expect_json(res, StatusCode::OK).await;
        assert_eq!(policy["oauth_access_token_minutes"], 5);
        assert_eq!(policy["oauth_refresh_idle_days"], 30);
        assert_eq!(policy["oauth_refresh_absolute_days"], 90);
        let (_, _, tokens) = connected(&app).await;
        assert_eq!(tokens["expires_in"], 300);
    }
}
