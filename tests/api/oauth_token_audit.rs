//! Who a token call is audited under (issue 32, item 7): a call made with
//! an OAuth access token names its grant and its client beside its parent
//! key, through a gateway on the database and one without (its audit
//! delivered to the server); a key's call names neither. Introspection
//! names the client the token was issued to.

use keysmith::domain::Scope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    gateway::upstream,
    gateway_remote::GatewayProcess,
    helpers::{TestApp, expect_json, rows_once},
    oauth::client_token,
    oauth_code::{
        Connector, REDIRECT, approved_code_for, connected, connector, introspect, pkce,
        signed_in_owner, token_request,
    },
    oauth_gateway::{RESOURCE, call, call_at, protected_gateway},
};

/// A token of the authorization-code flow for `resource`, approved for a
/// new service user `agent` and `tools:whoami` by a signed-in owner: its
/// client, the access token, and the owner's browser.
async fn code_token(app: &TestApp, resource: &str) -> (Connector, String, reqwest::Client) {
    let client = connector(app, "none", REDIRECT).await;
    let su = app.create_service_user("agent").await;
    let person = signed_in_owner(app).await;
    let (verifier, challenge) = pkce();
    let ids = (client.client_id.as_str(), challenge.as_str());
    let code = approved_code_for(app, &person, ids, &su, &["tools:whoami"], resource).await;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("resource", resource),
    ];
    let tokens = expect_json(token_request(app, &client, &params).await, StatusCode::OK).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    (client, access, person)
}

/// The tenant's only grant: its id and its parent key's.
async fn the_grant(app: &TestApp) -> (String, String) {
    let list = app.get("/api/v1/tenants/acme/oauth/grants").await;
    let list = expect_json(list, StatusCode::OK).await;
    let grant = &list["items"][0];
    let id = |field: &str| grant[field].as_str().expect("an id").to_owned();
    (id("id"), id("key_id"))
}

/// `(grant_id, client_id)` of the key's tool calls, oldest first, once at
/// least `min` are written.
async fn named(app: &TestApp, key_id: &str, min: usize) -> Vec<(Option<String>, Option<String>)> {
    let sql = "SELECT grant_id, client_id FROM audit_events \
               WHERE key_id = $1 AND action = 'tool.call' AND tool = 'whoami' ORDER BY id";
    rows_once(app, sql, key_id, min).await
}

fn some(id: &str) -> Option<String> {
    Some(id.to_owned())
}

both_engines! {
    async fn a_token_call_is_audited_under_its_grant_and_client_and_a_key_call_is_not(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let gateway = protected_gateway(&app, &upstream);
        let (client, access, person) = code_token(&app, RESOURCE).await;
        let (grant_id, grant_key) = the_grant(&app).await;
        call(&gateway, &access, "whoami").await.expect("a token of the code flow calls");
        assert_eq!(named(&app, &grant_key, 1).await, [(some(&grant_id), some(&client.client_id))]);

        // Client credentials: no grant; the client is the key, as it named itself.
        let robot = app.create_service_user("robot").await;
        let key = app.create_key(&robot, json!({"allowed_tools": ["whoami"]})).await;
        let key_id = key["id"].as_str().expect("id");
        let token = client_token(&app, "acme", &key, RESOURCE, None).await;
        call(&gateway, token["access_token"].as_str().expect("token"), "whoami").await.expect("a client-credentials token calls");
        assert_eq!(named(&app, key_id, 1).await, [(None, some(key_id))]);
        // The key itself: neither.
        call(&gateway, key["key"].as_str().expect("key"), "whoami").await.expect("the key calls");
        assert_eq!(named(&app, key_id, 2).await[1], (None, None), "a key's call names no grant nor client");

        // The JSON API's audit events and the key page say the same.
        let path = format!("/api/v1/tenants/acme/keys/{grant_key}/audit?kind=calls");
        let events = expect_json(app.get(&path).await, StatusCode::OK).await;
        let call_event = events["items"].as_array().expect("items").iter().find(|e| e["tool"] == "whoami").expect("the call");
        assert_eq!((&call_event["grant_id"], &call_event["client_id"]), (&json!(grant_id), &json!(client.client_id)), "{call_event}");
        let path = format!("/api/v1/tenants/acme/keys/{key_id}/audit?kind=calls");
        let events = expect_json(app.get(&path).await, StatusCode::OK).await;
        let whoami = events["items"].as_array().expect("items").iter().filter(|e| e["tool"] == "whoami");
        let clients: Vec<&Value> = whoami.map(|e| &e["client_id"]).collect();
        assert_eq!(clients, [&Value::Null, &json!(key_id)], "newest first: the key's call, then the token's");
        let page = person.get(app.url(&format!("/admin/api-keys/{grant_key}?tenant=acme&kind=calls"))).send().await.expect("page");
        let page = page.text().await.expect("html");
        let shown = format!("with an OAuth token of {}, grant {grant_id}", client.client_id);
        assert!(page.contains(&shown), "{shown} on the key page");
    }

    async fn a_gateway_without_a_database_delivers_the_grant_and_client_too(app: TestApp) {
        let (upstream, _events) = upstream().await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let public_url = app.state.config.public_url.clone();
        let args = ["--resource", RESOURCE];
        let env = [("KEYSMITH_PUBLIC_URL", public_url.as_str())];
        let gateway = GatewayProcess::start(&app, &upstream, &verify_key, &args, &env).await;
        let (client, access, _) = code_token(&app, RESOURCE).await;
        let (grant_id, grant_key) = the_grant(&app).await;
        call_at(&gateway.mcp(), &access, "whoami").await.expect("verified through the server");
        gateway.stop().await;
        assert_eq!(named(&app, &grant_key, 1).await, [(some(&grant_id), some(&client.client_id))]);
    }

    async fn a_delivered_grant_must_be_its_keys(app: TestApp) {
        code_token(&app, RESOURCE).await;
        let (grant_id, _) = the_grant(&app).await;
        let su = app.create_service_user("other").await;
        let key = app.create_key(&su, json!({})).await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let event = |grant: &str| json!({"events": [{
            "event_id": "0123456789abcdef", "key_id": key["id"], "service_user_id": su,
            "subject": "whoami", "outcome": "allowed", "reason": "valid",
            "at": keysmith::domain::UnixTime::from(app.now()).rfc3339(),
            "grant_id": grant, "client_id": "kc_forged",
        }]});
        let res = app.post_as(&verify_key, "/api/v1/audit-events", &event(&grant_id)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "another key's grant: nothing stored");
        let (calls,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(calls, 0);
    }

    async fn introspection_names_the_client_the_token_was_issued_to(app: TestApp) {
        let (client, _, tokens) = connected(&app).await;
        let seen = introspect(&app, tokens["access_token"].as_str().expect("access")).await;
        assert_eq!(seen["client_id"], client.client_id.as_str(), "the OAuth client, not the grant's key: {seen}");
        let su = app.create_service_user("robot").await;
        let key = app.create_key(&su, json!({})).await;
        let token = client_token(&app, "acme", &key, "https://mcp.example.com/mcp", None).await;
        let seen = introspect(&app, token["access_token"].as_str().expect("token")).await;
        assert_eq!(seen["client_id"], key["id"], "client credentials: the client_id it authenticated with");
    }
}
