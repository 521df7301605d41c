//! What the scheduler sweeps from the authorization server: a consent whose
//! code was never redeemed leaves no grant (a grant is live only once its
//! code is), and a registered client that never got a grant is deleted
//! after `KEYSMITH_OAUTH_UNUSED_CLIENT_HOURS`; pre-registered clients and
//! clients with a grant stay.

use reqwest::StatusCode;
use time::Duration;

use crate::{
    both_engines,
    helpers::{TestApp, expect_json},
    oauth::expect_oauth_error,
    oauth_code::{
        Connector, REDIRECT, approved_code, connector, introspect, pkce, redeem, signed_in_owner,
    },
    oauth_register::register_public,
};

/// Grants the API lists.
async fn listed(app: &TestApp) -> usize {
    let list = app.get("/api/v1/tenants/acme/oauth/grants").await;
    let list = expect_json(list, StatusCode::OK).await;
    list["items"].as_array().expect("items").len()
}

async fn count_where(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

/// A code approved by `person` for `client` to act as `su`, and its verifier.
async fn consent(
    app: &TestApp,
    person: &reqwest::Client,
    client: &Connector,
    su: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let scopes = ["tools:whoami"];
    let code = approved_code(app, person, &client.client_id, &challenge, su, &scopes).await;
    (code, verifier)
}

/// The ids of the stored clients, in id order.
async fn stored_clients(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM oauth_clients ORDER BY id")
        .fetch_all(app.state.pool())
        .await
        .expect("clients")
}

both_engines! {
    async fn a_consent_never_redeemed_leaves_no_grant(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (code, verifier) = consent(&app, &person, &client, &su).await;
        // Pending: stored, but neither listed nor revocable.
        assert_eq!((app.count("oauth_grants").await, listed(&app).await), (1, 0));
        let grant_id: String = sqlx::query_scalar("SELECT id FROM oauth_grants").fetch_one(app.state.pool()).await.expect("grant");
        let path = app.url(&format!("/api/v1/tenants/acme/oauth/grants/{grant_id}"));
        let res = app.client.delete(path).bearer_auth(&app.admin_key).send().await.expect("revoke");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "a pending grant is no connection yet");

        // A sweep while the code may still be redeemed keeps it.
        app.tick().await;
        assert_eq!(app.count("oauth_grants").await, 1);
        // Past the code's 60 seconds, the sweep deletes it, its code with it, and ends its key.
        app.clock.advance(Duration::seconds(61));
        app.tick().await;
        assert_eq!((app.count("oauth_grants").await, app.count("oauth_codes").await), (0, 0));
        let keys = count_where(&app, "SELECT COUNT(*) FROM api_keys WHERE name LIKE 'OAuth:%' AND status <> 'revoked'").await;
        assert_eq!(keys, 0, "the parent key minted for it is revoked");
        assert_eq!(count_where(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.consent.expire'").await, 1);
        app.tick().await;
        assert_eq!(count_where(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.consent.expire'").await, 1, "swept once");
        // No token comes of the code now.
        expect_oauth_error(redeem(&app, &client, &code, &verifier).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(listed(&app).await, 0);

        // A code burnt by a wrong verifier leaves nothing either, at the next sweep.
        let (code, _) = consent(&app, &person, &client, &su).await;
        expect_oauth_error(redeem(&app, &client, &code, "v-wrong-verifier-0000000000000000000000000000").await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        app.tick().await;
        assert_eq!((app.count("oauth_grants").await, listed(&app).await), (0, 0));

        // Redeemed: live, listed, and the sweep leaves it alone.
        let (code, verifier) = consent(&app, &person, &client, &su).await;
        let tokens = expect_json(redeem(&app, &client, &code, &verifier).await, StatusCode::OK).await;
        assert_eq!(listed(&app).await, 1);
        app.clock.advance(Duration::seconds(61));
        app.tick().await;
        assert_eq!(listed(&app).await, 1);
        assert_eq!(introspect(&app, tokens["access_token"].as_str().expect("access")).await["active"], true);
    }

    async fn registered_clients_never_used_are_purged(app: TestApp) {
        let unused = register_public(&app, &[REDIRECT]).await;
        let used = register_public(&app, &[REDIRECT]).await;
        let abandoned = register_public(&app, &[REDIRECT]).await;
        let admins = connector(&app, "none", REDIRECT).await.client_id;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let public = |id: &str| Connector { client_id: id.to_owned(), secret: None };
        let (code, verifier) = consent(&app, &person, &public(&used), &su).await;
        expect_json(redeem(&app, &public(&used), &code, &verifier).await, StatusCode::OK).await;
        // A consent never redeemed is no use: swept, its client counts as unused.
        consent(&app, &person, &public(&abandoned), &su).await;

        app.clock.advance(Duration::hours(23));
        app.tick().await;
        let mut all = vec![unused.clone(), used.clone(), abandoned.clone(), admins.clone()];
        all.sort();
        assert_eq!(stored_clients(&app).await, all, "within the 24 hours: all kept");
        let late = register_public(&app, &[REDIRECT]).await;

        app.clock.advance(Duration::hours(2));
        app.tick().await;
        let mut kept = vec![used, admins, late];
        kept.sort();
        assert_eq!(stored_clients(&app).await, kept, "a client with a grant, an admin's, and a recent one stay");
        let purged = count_where(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.client_purged'").await;
        assert_eq!(purged, 2);
        app.tick().await;
        assert_eq!(count_where(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.client_purged'").await, 2, "once each");
        // A purged client is unknown to the issuer.
        let (code, verifier) = (String::from("x"), String::from("y"));
        expect_oauth_error(redeem(&app, &public(&unused), &code, &verifier).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}
