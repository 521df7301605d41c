//! Attacks on the authorization-code flow, each answered: code replay (a
//! concurrent burst), a missing or wrong PKCE verifier, codes bound to
//! another client, redirect or resource, open-redirect attempts, consent
//! without a person of the tenant, CSRF and framing of the consent page,
//! another tenant's grants and tokens.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::{
    admin::{PASSWORD, admin_user, browser, sign_in},
    both_engines,
    helpers::{TestApp, expect_json},
    oauth::{expect_oauth_error, globex_key},
    oauth_code::{
        REDIRECT, answer, approved_code, authorize_query, authorize_url, connected, connector,
        introspect, param, pkce, redeem, redirect_params, refresh, signed_in_owner, token_request,
    },
};

async fn audited(app: &TestApp, action: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(app.state.pool())
        .await
        .expect("count");
    n
}

both_engines! {
    async fn a_burst_of_one_code_redeems_it_once_and_the_replays_end_the_grant(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (verifier, challenge) = pkce();
        let code = approved_code(&app, &person, &client.client_id, &challenge, &su, &["tools:whoami"]).await;
        let mut burst = JoinSet::new();
        for _ in 0..8 {
            let form = vec![
                ("grant_type", "authorization_code".to_owned()), ("code", code.clone()),
                ("redirect_uri", REDIRECT.to_owned()), ("code_verifier", verifier.clone()),
                ("client_id", client.client_id.clone()),
            ];
            let (http, url) = (app.client.clone(), app.url("/oauth/acme/token"));
            burst.spawn(async move {
                let res = http.post(url).form(&form).send().await.expect("token");
                (res.status(), res.json::<serde_json::Value>().await.expect("json"))
            });
        }
        let answers = burst.join_all().await;
        let issued: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
        assert_eq!(issued.len(), 1, "exactly one redemption: {answers:?}");
        assert!(answers.iter().filter(|(s, _)| *s != StatusCode::OK).all(|(s, b)| *s == StatusCode::BAD_REQUEST && b["error"] == "invalid_grant"), "{answers:?}");
        // The replays revoked what the first redemption got (OAuth 2.1 §4.1.3).
        let access = issued[0].1["access_token"].as_str().expect("access");
        assert_eq!(introspect(&app, access).await["active"], false);
        assert_eq!(audited(&app, "oauth.code_replay").await, 1, "one grant ended, once");
        assert_eq!(app.count("oauth_grants").await, 1);
        // The one redemption made it live (listed), the replays ended it.
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(list["items"][0]["revoked_reason"], "authorization code replayed");
    }

    async fn a_burst_of_one_refresh_token_rotates_it_once_and_ends_the_grant(app: TestApp) {
        let (client, _, tokens) = connected(&app).await;
        let rt = tokens["refresh_token"].as_str().expect("refresh").to_owned();
        let mut burst = JoinSet::new();
        for _ in 0..6 {
            let form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", rt.clone()), ("client_id", client.client_id.clone())];
            let (http, url) = (app.client.clone(), app.url("/oauth/acme/token"));
            burst.spawn(async move {
                let res = http.post(url).form(&form).send().await.expect("token");
                (res.status(), res.json::<serde_json::Value>().await.expect("json"))
            });
        }
        let answers = burst.join_all().await;
        let rotated: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
        assert_eq!(rotated.len(), 1, "one rotation: {answers:?}");
        assert!(answers.iter().filter(|(s, _)| *s != StatusCode::OK).all(|(_, b)| b["error"] == "invalid_grant"), "{answers:?}");
        // The others were reuse: the grant ended, the winner's pair with it.
        assert_eq!(introspect(&app, rotated[0].1["access_token"].as_str().expect("access")).await["active"], false);
        assert_eq!(audited(&app, "oauth.refresh_reuse").await, 1);
    }

    async fn codes_are_bound_to_the_verifier_client_redirect_and_resource_and_expire(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let other = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (verifier, challenge) = pkce();
        let fresh = || approved_code(&app, &person, &client.client_id, &challenge, &su, &["tools:whoami"]);

        let code = fresh().await;
        let no_verifier = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
        expect_oauth_error(no_verifier, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let after = redeem(&app, &client, &code, &verifier).await;
        expect_oauth_error(after, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let (wrong, _) = pkce();
        let code = fresh().await;
        expect_oauth_error(redeem(&app, &client, &code, &wrong).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        // `plain`: the challenge itself as the verifier.
        let code = fresh().await;
        expect_oauth_error(redeem(&app, &client, &code, &challenge).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let code = fresh().await;
        expect_oauth_error(redeem(&app, &other, &code, &verifier).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let code = fresh().await;
        let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8/callback"), ("code_verifier", &verifier)]).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let code = fresh().await;
        let res = token_request(&app, &client, &[("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", REDIRECT), ("code_verifier", &verifier), ("resource", "https://other.example.com/mcp")]).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let code = fresh().await;
        app.clock.advance(time::Duration::seconds(61));
        let body = expect_oauth_error(redeem(&app, &client, &code, &verifier).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert!(body["error_description"].as_str().expect("text").contains("expired"), "{body}");

        // An unknown code, and the good path still works for a fresh one.
        expect_oauth_error(redeem(&app, &client, "nonsense", &verifier).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let code = fresh().await;
        expect_json(redeem(&app, &client, &code, &verifier).await, StatusCode::OK).await;
    }

    async fn a_confidential_client_must_authenticate(app: TestApp) {
        let client = connector(&app, "client_secret_basic", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (verifier, challenge) = pkce();
        let code = approved_code(&app, &person, &client.client_id, &challenge, &su, &["tools:whoami"]).await;
        let unauthenticated = crate::oauth_code::Connector { client_id: client.client_id.clone(), secret: None };
        expect_oauth_error(redeem(&app, &unauthenticated, &code, &verifier).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let wrong = crate::oauth_code::Connector { client_id: client.client_id.clone(), secret: Some("kcs_wrong".into()) };
        expect_oauth_error(redeem(&app, &wrong, &code, &verifier).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
        // Client authentication failed before the code was looked at: it still works.
        expect_json(redeem(&app, &client, &code, &verifier).await, StatusCode::OK).await;
    }

    async fn until_the_redirect_is_trusted_errors_are_pages_never_redirects(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let (_, challenge) = pkce();
        let base = authorize_query(&client.client_id, &challenge, "s", "tools:*");
        let with = |name: &str, value: &str| -> Vec<(String, String)> {
            let mut q: Vec<_> = base.iter().filter(|(k, _)| k != name).cloned().collect();
            if !value.is_empty() { q.push((name.to_owned(), value.to_owned())); }
            q
        };
        for query in [
            with("client_id", "kc_unknownunknownunknown1"),
            with("client_id", ""),
            with("redirect_uri", "https://evil.example/callback"),
            with("redirect_uri", "http://127.0.0.1.evil.example/callback"),
            with("redirect_uri", "http://127.0.0.1:7/callback/../../evil"),
            with("redirect_uri", "javascript:alert(1)"),
            [base.clone(), vec![("redirect_uri".into(), "https://evil.example/cb".into())]].concat(),
        ] {
            let res = app.client.get(authorize_url(&app, &query)).send().await.expect("authorize");
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query:?}");
            assert!(res.headers().get("location").is_none(), "never redirected: {query:?}");
            assert!(!res.text().await.expect("html").contains("evil.example"), "the page does not link the attacker's URI");
        }
        // Trusted from here on: back to the client with the error, state and iss.
        let http = browser();
        let issuer = format!("{}/oauth/acme", app.state.config.public_url);
        for (query, error) in [
            (with("response_type", "token"), "unsupported_response_type"),
            (with("code_challenge", ""), "invalid_request"),
            (with("code_challenge_method", "plain"), "invalid_request"),
            (with("code_challenge_method", ""), "invalid_request"),
            (with("code_challenge", "short"), "invalid_request"),
            (with("resource", ""), "invalid_target"),
            (with("resource", "ftp://mcp.example.com"), "invalid_target"),
            (with("scope", "admin:everything"), "invalid_scope"),
        ] {
            let res = http.get(authorize_url(&app, &query)).send().await.expect("authorize");
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{query:?}");
            let params = redirect_params(&res);
            assert_eq!(param(&params, "error"), Some(error), "{query:?}");
            assert_eq!(param(&params, "state"), Some("s"));
            assert_eq!(param(&params, "iss"), Some(issuer.as_str()));
            assert!(param(&params, "code").is_none());
        }
        assert_eq!(app.count("oauth_grants").await, 0);
    }

    async fn only_an_owner_or_admin_of_the_tenant_answers(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let (_, challenge) = pkce();
        let query = authorize_query(&client.client_id, &challenge, "s", "tools:*");
        let url = authorize_url(&app, &query);
        // Signed out: to the sign-in page, which comes back here.
        let person = browser();
        let res = person.get(&url).send().await.expect("authorize");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = res.headers()["location"].to_str().expect("ascii").to_owned();
        assert!(to.starts_with("/admin/sign-in?next=%2Foauth%2Facme%2Fauthorize%3F"), "{to}");
        let page = person.get(app.url(&to)).send().await.expect("sign-in page").text().await.expect("html");
        let next = crate::oauth_code::field_of(&page, "next").replace("&#38;", "&").replace("&amp;", "&");
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let res = person.post(app.url("/admin/sign-in"))
            .form(&[("email", "admin@acme.test"), ("password", PASSWORD), ("next", next.as_str())])
            .send().await.expect("sign in");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let back = res.headers()["location"].to_str().expect("ascii");
        assert_eq!(app.url(back), url, "back to the authorization request");
        assert_eq!(person.get(&url).send().await.expect("consent").status(), StatusCode::OK, "an admin may answer");
        // An answer posted after the session ended: sign in again, then the request is shown again.
        let res = browser().post(app.url("/oauth/acme/authorize")).form(&query).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()["location"].to_str().expect("ascii"), to, "the same request, re-entered");
        // The sign-in form's next never leads elsewhere.
        let res = browser().post(app.url("/admin/sign-in"))
            .form(&[("email", "admin@acme.test"), ("password", PASSWORD), ("next", "//evil.example/oauth/acme/authorize")])
            .send().await.expect("sign in");
        assert_eq!(res.headers()["location"], "/admin/api-keys");

        // A navigation from another site (no SameSite=Strict cookie): re-entered from this origin.
        let res = browser().get(&url).header("sec-fetch-site", "cross-site").send().await.expect("authorize");
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.expect("html");
        assert!(html.contains("http-equiv=\"refresh\""), "{html}");

        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let viewer = browser();
        sign_in(&app, &viewer, "viewer@acme.test", PASSWORD).await;
        assert_eq!(viewer.get(&url).send().await.expect("consent").status(), StatusCode::FORBIDDEN);

        let globex = app.create_tenant("globex").await;
        let outsider = crate::admin::account(&app, "g@globex.test", false).await;
        keysmith::domain::people::accounts::grant(app.state.pool(), &globex.id, &outsider.id, Role::Owner, app.now()).await.expect("grant");
        let stranger = browser();
        sign_in(&app, &stranger, "g@globex.test", PASSWORD).await;
        assert_eq!(stranger.get(&url).send().await.expect("consent").status(), StatusCode::NOT_FOUND);
        assert_eq!(app.count("oauth_grants").await, 0);
    }

    async fn the_consent_page_cannot_be_framed_forged_or_answered_twice(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        let su = app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (_, challenge) = pkce();
        let query = authorize_query(&client.client_id, &challenge, "s", "tools:whoami tools:files/*");
        let res = person.get(authorize_url(&app, &query)).send().await.expect("consent");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        let csp = res.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("form-action 'self' http://127.0.0.1:7;"), "only the client's redirect origin: {csp}");
        let page = res.text().await.expect("html");
        assert!(page.contains("Test Connector") && page.contains("tools:files/*") && page.contains("agent"));

        let approve = [("decision", "approve"), ("service_user_id", su.as_str()), ("approved_scope", "tools:whoami")];
        // A forged CSRF token, and a cross-site post.
        let mut forged: Vec<(String, String)> = query.clone();
        forged.extend([("csrf".to_owned(), "forged".to_owned()), ("form_token".to_owned(), crate::oauth_code::field_of(&page, "form_token"))]);
        forged.extend(approve.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let res = person.post(app.url("/oauth/acme/authorize")).form(&forged).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = person.post(app.url("/oauth/acme/authorize")).header("sec-fetch-site", "cross-site")
            .form(&[query.clone(), vec![("csrf".into(), crate::admin::csrf_of(&page))]].concat()).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        // A scope the client did not ask for, or none: refused.
        let res = answer(&app, &person, &query, &page, &[("decision", "approve"), ("service_user_id", &su), ("approved_scope", "tools:*")]).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = person.get(authorize_url(&app, &query)).send().await.expect("consent").text().await.expect("html");
        let res = answer(&app, &person, &query, &page, &[("decision", "approve"), ("service_user_id", &su)]).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // Answered once; the same form again (a re-POST) mints nothing.
        let page = person.get(authorize_url(&app, &query)).send().await.expect("consent").text().await.expect("html");
        assert_eq!(answer(&app, &person, &query, &page, &approve).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(answer(&app, &person, &query, &page, &approve).await.status(), StatusCode::CONFLICT);
        assert_eq!(app.count("oauth_grants").await, 1);
    }

    async fn a_denial_goes_back_with_access_denied_state_and_iss(app: TestApp) {
        let client = connector(&app, "none", REDIRECT).await;
        app.create_service_user("agent").await;
        let person = signed_in_owner(&app).await;
        let (_, challenge) = pkce();
        let state = "a b&c=d/é";
        let query = authorize_query(&client.client_id, &challenge, state, "tools:*");
        let page = person.get(authorize_url(&app, &query)).send().await.expect("consent").text().await.expect("html");
        let res = answer(&app, &person, &query, &page, &[("decision", "deny")]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let params = redirect_params(&res);
        assert_eq!(param(&params, "error"), Some("access_denied"));
        assert_eq!(param(&params, "state"), Some(state), "state comes back exactly as sent");
        assert_eq!(param(&params, "iss"), Some(format!("{}/oauth/acme", app.state.config.public_url).as_str()));
        assert_eq!(app.count("oauth_grants").await, 0);
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.consent' AND outcome = 'denied'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(n, 1);
    }

    async fn grants_are_revocable_and_another_tenants_are_not_found(app: TestApp) {
        let (client, _, tokens) = connected(&app).await;
        let access = tokens["access_token"].as_str().expect("access");
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        let id = list["items"][0]["id"].as_str().expect("id").to_owned();

        // Globex sees none of it, and cannot end it.
        globex_key(&app).await;
        let globex_admin = app.management_key(&keysmith::domain::tenancy::tenants::find_by_slug(app.state.pool(), "globex").await.expect("q").expect("globex")).await;
        let theirs = expect_json(app.get_as(&globex_admin, "/api/v1/tenants/globex/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(theirs["items"].as_array().expect("items").len(), 0);
        let res = app.client.delete(app.url(&format!("/api/v1/tenants/globex/oauth/grants/{id}"))).bearer_auth(&globex_admin).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.client.delete(app.url(&format!("/api/v1/tenants/acme/oauth/grants/{id}"))).bearer_auth(&globex_admin).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "another tenant's slug");
        // Nor use its token: another issuer knows nothing of it.
        let res = app.client.post(app.url("/oauth/globex/introspect")).bearer_auth(&globex_admin).form(&[("token", access)]).send().await.expect("introspect");
        assert_eq!(expect_json(res, StatusCode::OK).await["active"], false);
        let res = app.client.post(app.url("/oauth/globex/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().expect("rt")), ("client_id", &client.client_id)])
            .send().await.expect("token");
        expect_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_eq!(introspect(&app, access).await["active"], true, "still working in its own tenant");

        let res = app.client.delete(app.url(&format!("/api/v1/tenants/acme/oauth/grants/{id}"))).bearer_auth(&app.admin_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(introspect(&app, access).await["active"], false, "its tokens stop at once");
        expect_oauth_error(refresh(&app, &client, tokens["refresh_token"].as_str().expect("rt")).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let res = app.client.delete(app.url(&format!("/api/v1/tenants/acme/oauth/grants/{id}"))).bearer_auth(&app.admin_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = app.client.delete(app.url("/api/v1/tenants/acme/oauth/grants/nosuchgrant")).bearer_auth(&app.admin_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(audited(&app, "oauth.grant.revoke").await, 1);
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(list["items"][0]["revoked_reason"], "revoked");
    }

    async fn a_grants_key_is_never_rotated_and_revoking_it_ends_the_grant(app: TestApp) {
        let (client, _, tokens) = connected(&app).await;
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        let key_id = list["items"][0]["key_id"].as_str().expect("key").to_owned();
        assert_eq!(app.rotate_key(&key_id).await.status(), StatusCode::CONFLICT);
        assert_eq!(app.revoke_key(&key_id, "cleanup").await.status(), StatusCode::OK);
        let list = expect_json(app.get("/api/v1/tenants/acme/oauth/grants").await, StatusCode::OK).await;
        assert_eq!(list["items"][0]["revoked_reason"], "key revoked");
        assert_eq!(introspect(&app, tokens["access_token"].as_str().expect("access")).await["active"], false);
        let res = refresh(&app, &client, tokens["refresh_token"].as_str().expect("rt")).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }

    async fn a_disabled_service_user_or_revoked_key_stops_the_grant(app: TestApp) {
        let (client, su, tokens) = connected(&app).await;
        let access = tokens["access_token"].as_str().expect("access");
        let res = app.post(&format!("/api/v1/tenants/acme/service-users/{su}/disable"), &serde_json::json!({})).await;
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(introspect(&app, access).await["active"], false);
        let res = refresh(&app, &client, tokens["refresh_token"].as_str().expect("rt")).await;
        expect_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}
