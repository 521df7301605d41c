//! `/api/v1/tenants/{tenant}/oauth/clients`: admins pre-register clients (a
//! confidential one's secret shown once), list and delete them; dynamic
//! registration is opened or closed in the tenant policy
//! (`oauth_registration_open`); another tenant's are 404.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
    oauth::expect_oauth_error,
    oauth_code::{connected, introspect, refresh},
    oauth_register::{register, register_public},
    tenant_policy::patch,
};
use keysmith::domain::{Scope, oauth::clients::ClientRefused};

const CLIENTS: &str = "/api/v1/tenants/acme/oauth/clients";

async fn delete(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("delete")
}

both_engines! {
    async fn an_admin_pre_registers_a_confidential_client_and_sees_its_secret_once(app: TestApp) {
        let body = json!({"client_name": "Internal agent", "redirect_uris": ["https://agent.internal.example/cb"],
                          "client_uri": "https://agent.internal.example"});
        let res = app.post(CLIENTS, &body).await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        let created = expect_json(res, StatusCode::CREATED).await;
        assert_eq!(created["kind"], "pre_registered");
        assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
        assert!(created["created_by"].as_str().expect("by").starts_with("key:"), "{created}");
        let secret = created["client_secret"].as_str().expect("secret once");
        let client_id = created["client_id"].as_str().expect("id");

        let list = expect_json(app.get(CLIENTS).await, StatusCode::OK).await;
        assert_eq!(list["registration_open"], true);
        assert_eq!(list["items"].as_array().expect("items").len(), 1);
        assert_eq!(list["items"][0]["client_id"], client_id);
        assert!(!list.to_string().contains(secret), "never listed again");
        assert!(list["items"][0].get("client_secret").is_none());

        let client = app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, client_id)
            .await.expect("db").expect("known");
        assert_eq!(client.name, "Internal agent");
        assert!(client.authenticate(&app.state.peppers, Some(secret)));

        // A public one has no secret.
        let body = json!({"client_name": "CLI", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
        let created = expect_json(app.post(CLIENTS, &body).await, StatusCode::CREATED).await;
        assert!(created["client_secret"].is_null(), "{created}");
    }

    async fn invalid_clients_are_422_and_store_nothing(app: TestApp) {
        for body in [
            json!({"client_name": "x", "redirect_uris": ["javascript:alert(1)"]}),
            json!({"client_name": "x", "redirect_uris": []}),
            json!({"client_name": " ", "redirect_uris": ["https://e.example/cb"]}),
            json!({"client_name": "x", "redirect_uris": ["https://e.example/cb"], "grant_types": ["client_credentials"]}),
            json!({"client_name": "x", "redirect_uris": ["https://e.example/cb"], "token_endpoint_auth_method": "tls_client_auth"}),
        ] {
            expect_error(app.post(CLIENTS, &body).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        }
        let unknown_field = json!({"client_name": "x", "redirect_uris": ["https://e.example/cb"], "client_secret": "mine"});
        let res = app.post(CLIENTS, &unknown_field).await;
        assert!(res.status().is_client_error(), "{}", res.status());
        let list = expect_json(app.get(CLIENTS).await, StatusCode::OK).await;
        assert_eq!(list["items"], json!([]));
    }

    async fn deleting_a_client_makes_it_unknown_and_another_tenant_gets_404(app: TestApp) {
        let client_id = register_public(&app, &["https://e.example/cb"]).await;
        let globex = app.create_tenant("globex").await;
        let globex_key = app.management_key(&globex).await;
        // Another tenant's key on acme's paths, and acme's client on globex's path.
        expect_error(app.get_as(&globex_key, CLIENTS).await, StatusCode::NOT_FOUND, "not_found").await;
        let theirs = format!("/api/v1/tenants/globex/oauth/clients/{client_id}");
        expect_error(delete(&app, &globex_key, &theirs).await, StatusCode::NOT_FOUND, "not_found").await;
        let ours = format!("{CLIENTS}/{client_id}");
        expect_error(delete(&app, &globex_key, &ours).await, StatusCode::NOT_FOUND, "not_found").await;
        let globex_list = expect_json(app.get_as(&globex_key, "/api/v1/tenants/globex/oauth/clients").await, StatusCode::OK).await;
        assert_eq!(globex_list["items"], json!([]), "a tenant lists only its own clients");
        assert!(app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, &client_id).await.expect("db").is_ok());

        let res = delete(&app, &app.admin_key, &ours).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let gone = app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, &client_id).await.expect("db");
        assert_eq!(gone, Err(ClientRefused::Unknown));
        expect_error(delete(&app, &app.admin_key, &ours).await, StatusCode::NOT_FOUND, "not_found").await;
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.client_deleted'")
            .fetch_one(app.state.pool()).await.expect("audit");
        assert_eq!(audited, 1);
    }

    async fn the_tenant_policy_closes_and_reopens_dynamic_registration(app: TestApp) {
        let policy = expect_json(app.get("/api/v1/tenants/acme").await, StatusCode::OK).await;
        assert_eq!(policy["oauth_registration_open"], true, "open by default");
        let closed = expect_json(patch(&app, &app.admin_key, "acme", json!({"oauth_registration_open": false})).await, StatusCode::OK).await;
        assert_eq!(closed["oauth_registration_open"], false);
        assert_eq!(closed["oauth_access_token_minutes"], policy["oauth_access_token_minutes"], "the rest of the policy stays");
        let list = expect_json(app.get(CLIENTS).await, StatusCode::OK).await;
        assert_eq!(list["registration_open"], false);
        let metadata = json!({"redirect_uris": ["https://e.example/cb"], "token_endpoint_auth_method": "none"});
        expect_oauth_error(register(&app, "acme", &metadata).await, StatusCode::FORBIDDEN, "access_denied").await;
        assert_eq!(app.count("oauth_clients").await, 0, "nothing stored");
        let (reason,): (String,) = sqlx::query_as("SELECT reason FROM audit_events WHERE action = 'tenant.policy'")
            .fetch_one(app.state.pool()).await.expect("audited as a policy change");
        let change: Value = serde_json::from_str(&reason).expect("json");
        assert_eq!((&change["before"]["oauth_registration_open"], &change["after"]["oauth_registration_open"]), (&json!(true), &json!(false)));
        // Admins still pre-register.
        let body = json!({"client_name": "Allowed", "redirect_uris": ["https://e.example/cb"]});
        expect_json(app.post(CLIENTS, &body).await, StatusCode::CREATED).await;
        // A verify-scoped key may not change it; another tenant's key cannot see it.
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        expect_error(patch(&app, &verify_key, "acme", json!({"oauth_registration_open": true})).await, StatusCode::FORBIDDEN, "forbidden").await;
        let globex = app.create_tenant("globex").await;
        let globex_key = app.management_key(&globex).await;
        expect_error(patch(&app, &globex_key, "acme", json!({"oauth_registration_open": true})).await, StatusCode::NOT_FOUND, "not_found").await;
        expect_oauth_error(register(&app, "acme", &metadata).await, StatusCode::FORBIDDEN, "access_denied").await;
        expect_json(register(&app, "globex", &metadata).await, StatusCode::CREATED).await;
        let reopened = expect_json(patch(&app, &app.admin_key, "acme", json!({"oauth_registration_open": true})).await, StatusCode::OK).await;
        assert_eq!(reopened["oauth_registration_open"], true);
        expect_json(register(&app, "acme", &metadata).await, StatusCode::CREATED).await;
        let bad = patch(&app, &app.admin_key, "acme", json!({"oauth_registration_open": "closed"})).await;
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY, "a boolean, nothing else");
        let old_switch = app.client.put(app.url("/api/v1/tenants/acme/oauth/registration")).bearer_auth(&app.admin_key)
            .json(&json!({"open": false})).send().await.expect("put");
        assert!(matches!(old_switch.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED), "one switch, in the policy");
    }

    async fn deleting_a_client_ends_its_connections_and_their_tokens(app: TestApp) {
        let (client, _su, tokens) = connected(&app).await;
        let access = tokens["access_token"].as_str().expect("access");
        assert_eq!(introspect(&app, access).await["active"], true);
        let res = delete(&app, &app.admin_key, &format!("{CLIENTS}/{}", client.client_id)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(introspect(&app, access).await["active"], false, "its token stops at once");
        let res = refresh(&app, &client, tokens["refresh_token"].as_str().expect("refresh")).await;
        expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let reason: Option<String> = sqlx::query_scalar("SELECT revoked_reason FROM oauth_grants")
            .fetch_one(app.state.pool()).await.expect("grant");
        assert_eq!(reason.as_deref(), Some("client deleted"));
    }
}
