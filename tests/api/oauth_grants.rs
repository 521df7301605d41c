//! What an approved grant leads to outside the token endpoint: its token
//! through the real `keysmith gateway --resource` (and refused once the
//! grant is revoked), the email to the service user's owner (real SMTP),
//! and the admin Connections page.

use std::time::Duration;

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, sign_in},
    both_engines,
    gateway::upstream,
    helpers::{TestApp, expect_json},
    mcp::tool_call,
    oauth_code::{REDIRECT, approved_code_for, connector, pkce, signed_in_owner, token_request},
    oauth_gateway::{self, call, protected_gateway},
    smtp_sink::{SmtpSink, decoded},
};

async fn grant_id(app: &TestApp) -> String {
    let list = expect_json(
        app.get("/api/v1/tenants/acme/oauth/grants").await,
        StatusCode::OK,
    )
    .await;
    list["items"][0]["id"].as_str().expect("id").to_owned()
}

both_engines! {
    async fn a_grants_token_calls_through_the_gateway_until_the_grant_is_revoked(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (verifier, challenge) = pkce();
        let resource = oauth_gateway::RESOURCE;
        let code = approved_code_for(&app, &person, (&client.client_id, &challenge), &su, &["tools:whoami"], resource).await;
        let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", REDIRECT), ("code_verifier", &verifier)]).await;
        let tokens = expect_json(res, StatusCode::OK).await;
        let token = tokens["access_token"].as_str().expect("access");

        let (upstream, _events) = upstream().await;
        let gateway = protected_gateway(&app, &upstream);
        let who: Value = serde_json::from_str(&call(&gateway, token, "whoami").await.expect("whoami")).expect("json");
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(who["identity"]["x-keysmith-key-id"], list["items"][0]["key_id"], "the grant's parent key: {who}");
        assert_eq!(who["identity"]["x-keysmith-service-user"], "agent");
        assert!(call(&gateway, token, "echo").await.is_err(), "outside the approved scopes");

        let id = grant_id(&app).await;
        let res = app.client.delete(app.url(&format!("/api/v1/tenants/acme/oauth/grants/{id}"))).bearer_auth(&app.admin_key).send().await.expect("revoke");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        // Within the gateway's cache TTL (5 s; at once on PostgreSQL), as a key's revocation.
        let mut status = StatusCode::OK;
        for _ in 0..80 {
            status = oauth_gateway::post(&gateway, Some(token), &tool_call(4, "whoami")).await.status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the revoked grant's token");
    }

    async fn the_service_users_owner_is_told_when_a_client_connects(app: TestApp) {
        let sink = SmtpSink::start();
        let clock = app.clock.clone();
        let db = app.stop().await;
        let app = TestApp::spawn_with(db, &[("KEYSMITH_SMTP_URL", sink.url())], Some(clock)).await;
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (verifier, challenge) = pkce();
        let code = approved_code_for(&app, &person, (&client.client_id, &challenge), &su, &["tools:whoami"], "https://mcp.example.com/mcp").await;
        app.tick().await;
        app.tick().await;
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "one email per connection");
        let mail = decoded(&messages[0]);
        assert!(mail.contains("X-Envelope-To: agent@owner.test"), "{mail}");
        assert!(mail.contains("Test Connector") && mail.contains("owner@acme.test") && mail.contains("tools:whoami"), "{mail}");
        assert!(mail.contains("/admin/oauth-grants?tenant=acme"), "{mail}");
        assert!(!mail.contains(&code) && !mail.contains(&verifier), "no code or verifier in the email");
    }

    async fn the_connections_page_lists_and_revokes(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (verifier, challenge) = pkce();
        let code = approved_code_for(&app, &person, (&client.client_id, &challenge), &su, &["tools:whoami"], "https://mcp.example.com/mcp").await;
        // Listed once its code is redeemed (a pending grant is no connection yet).
        let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", REDIRECT), ("code_verifier", &verifier)]).await;
        expect_json(res, StatusCode::OK).await;
        let id = grant_id(&app).await;

        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let viewer = browser();
        sign_in(&app, &viewer, "viewer@acme.test", PASSWORD).await;
        let page = viewer.get(app.url("/admin/oauth-grants?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("Test Connector") && page.contains("agent") && page.contains("tools:whoami") && page.contains("owner@acme.test"), "{page}");
        assert!(!page.contains("/revoke\""), "a viewer gets no revoke button");
        let res = viewer.post(app.url(&format!("/admin/oauth-grants/{id}/revoke"))).form(&[("csrf", csrf_of(&page).as_str()), ("tenant", "acme")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        let page = person.get(app.url("/admin/oauth-grants?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("data-confirm=\"Revoke the connection"), "a confirmed revoke button");
        let res = person.post(app.url(&format!("/admin/oauth-grants/{id}/revoke"))).form(&[("csrf", "forged"), ("tenant", "acme")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = person.post(app.url(&format!("/admin/oauth-grants/{id}/revoke"))).form(&[("csrf", csrf_of(&page).as_str()), ("tenant", "acme")]).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(list["items"][0]["revoked_reason"], "revoked");
        assert_eq!(list["items"][0]["id"], json!(id));
        let (actor,): (String,) = sqlx::query_as("SELECT actor FROM audit_events WHERE action = 'oauth.grant.revoke'")
            .fetch_one(app.state.pool()).await.expect("audit");
        assert_eq!(actor, "user:owner@acme.test");
    }
}
