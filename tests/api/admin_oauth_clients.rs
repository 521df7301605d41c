//! The OAuth clients page: managers pre-register (a confidential client's
//! secret shown once, a re-sent form refused) and delete; the page shows
//! the policy's registration switch; viewers read; bad input shows on the
//! page and stores nothing.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
};

both_engines! {
    async fn an_admin_pre_registers_and_deletes_and_a_viewer_only_reads(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        admin_user(&app, "viewer@acme.test", Role::Viewer).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/oauth-clients?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("/oauth/acme/register") && page.contains("Open: any application"), "registration open by default");

        // Bad input: the page says why, nothing is stored.
        let bad = [
            ("csrf", csrf_of(&page)), ("form_token", field(&page, "form_token")), ("tenant", "acme".to_owned()),
            ("client_name", "Evil".to_owned()), ("redirect_uris", "javascript:alert(1)".to_owned()),
            ("auth_method", "client_secret_basic".to_owned()),
        ];
        let res = client.post(app.url("/admin/oauth-clients")).form(&bad).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.expect("html").contains("javascript"), "the error names the refused URI");
        assert_eq!(app.count("oauth_clients").await, 0);

        let page = client.get(app.url("/admin/oauth-clients?tenant=acme")).send().await.expect("page").text().await.expect("html");
        let form = [
            ("csrf", csrf_of(&page)), ("form_token", field(&page, "form_token")), ("tenant", "acme".to_owned()),
            ("client_name", "Claude (team)".to_owned()),
            ("redirect_uris", "https://claude.ai/api/mcp/auth_callback\r\n\r\nhttps://claude.com/api/mcp/auth_callback".to_owned()),
            ("auth_method", "client_secret_post".to_owned()),
        ];
        let res = client.post(app.url("/admin/oauth-clients")).form(&form).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::OK);
        let shown = res.text().await.expect("html");
        let secret = shown.split_once("readonly value=\"").and_then(|(_, rest)| rest.split('"').next()).expect("secret shown").to_owned();
        assert!(secret.starts_with("kcs_"), "{shown}");
        let again = client.post(app.url("/admin/oauth-clients")).form(&form).send().await.expect("post");
        assert_eq!(again.status(), StatusCode::CONFLICT, "a form token shows a secret once");
        assert_eq!(app.count("oauth_clients").await, 1);
        let (id, uris): (String, String) = sqlx::query_as("SELECT id, redirect_uris FROM oauth_clients").fetch_one(app.state.pool()).await.expect("row");
        assert_eq!(uris, r#"["https://claude.ai/api/mcp/auth_callback","https://claude.com/api/mcp/auth_callback"]"#);
        let stored = app.state.oauth_clients.resolve(app.state.pool(), &app.tenant.id, &id).await.expect("db").expect("known");
        assert!(stored.authenticate(&app.state.peppers, Some(&secret)));

        let page = client.get(app.url("/admin/oauth-clients?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("Claude (team)") && page.contains(&id) && !page.contains(&secret));
        let viewer = browser();
        sign_in(&app, &viewer, "viewer@acme.test", PASSWORD).await;
        let page = viewer.get(app.url("/admin/oauth-clients?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("Claude (team)") && !page.contains("Pre-register a client"));
        let viewer_action = [("csrf", csrf_of(&page)), ("tenant", "acme".to_owned())];
        let res = viewer.post(app.url(&format!("/admin/oauth-clients/{id}/delete"))).form(&viewer_action).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.count("oauth_clients").await, 1);

        let page = client.get(app.url("/admin/oauth-clients?tenant=acme")).send().await.expect("page").text().await.expect("html");
        let delete = [("csrf", csrf_of(&page)), ("tenant", "acme".to_owned())];
        let res = client.post(app.url(&format!("/admin/oauth-clients/{id}/delete"))).form(&delete).send().await.expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.count("oauth_clients").await, 0);
    }
}
