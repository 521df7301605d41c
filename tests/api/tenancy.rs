//! Authentication of the JSON API and tenant isolation: another tenant's
//! objects are 404, never 403.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{expect_error, expect_json},
};

both_engines! {
    async fn missing_or_bad_credentials_are_401(app: TestApp) {
        let res = app.client.get(app.url("/api/v1/tenants/acme/keys")).send().await.expect("request");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        for key in ["garbage", "ks_AAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            let res = app.get_as(key, "/api/v1/tenants/acme/keys").await;
            expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
    }

    async fn a_key_without_admin_scope_is_403(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let plain = app.create_key(&su, json!({})).await;
        let res = app.get_as(plain["key"].as_str().expect("key"), "/api/v1/tenants/acme/keys").await;
        expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }

    async fn revoked_and_expired_management_keys_are_refused(app: TestApp) {
        let su = app.create_service_user("ops").await;
        let admin = app.create_key(&su, json!({"scopes": ["keysmith:admin"], "expires_in_days": 2})).await;
        let admin_key = admin["key"].as_str().expect("key");
        expect_json(app.get_as(admin_key, "/api/v1/tenants/acme/keys").await, StatusCode::OK).await;
        app.clock.advance(time::Duration::days(2));
        expect_error(app.get_as(admin_key, "/api/v1/tenants/acme/keys").await, StatusCode::UNAUTHORIZED, "unauthorized").await;

        app.clock.advance(time::Duration::days(-2));
        let second = app.create_key(&su, json!({"scopes": ["keysmith:admin"]})).await;
        let second_key = second["key"].as_str().expect("key");
        assert_eq!(app.revoke_key(second["id"].as_str().expect("id"), "leaked").await.status(), StatusCode::OK);
        expect_error(app.get_as(second_key, "/api/v1/tenants/acme/keys").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    async fn other_tenants_objects_are_404(app: TestApp) {
        assert_eq!(app.tenant.slug, "acme");
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let globex_su = expect_json(
            app.post_as(&globex_admin, "/api/v1/tenants/globex/service-users", &json!({"name": "bot", "owner_email": "g@globex.test"})).await,
            StatusCode::CREATED,
        ).await;
        let globex_su_id = globex_su["id"].as_str().expect("id");
        let globex_key = expect_json(
            app.post_as(&globex_admin, "/api/v1/tenants/globex/keys", &json!({"service_user_id": globex_su_id, "name": "k"})).await,
            StatusCode::CREATED,
        ).await;
        let gid = globex_key["id"].as_str().expect("id");
        // The control: every path below exists and answers its own tenant, so
        // the 404s that follow are isolation, not a mistyped path.
        for path in ["/api/v1/tenants/globex/keys".to_owned(), "/api/v1/tenants/globex/service-users".to_owned(), format!("/api/v1/tenants/globex/keys/{gid}"), format!("/api/v1/tenants/globex/keys/{gid}/audit"), format!("/api/v1/tenants/globex/keys/{gid}/usage")] {
            expect_json(app.get_as(&globex_admin, &path).await, StatusCode::OK).await;
        }

        // acme's management key against globex's tenant path: 404, as if it did not exist.
        for path in ["/api/v1/tenants/globex/keys".to_owned(), "/api/v1/tenants/globex/service-users".to_owned(), format!("/api/v1/tenants/globex/keys/{gid}")] {
            expect_error(app.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
        }
        // globex's key id under acme's path: 404 for every action.
        for path in [format!("/api/v1/tenants/acme/keys/{gid}"), format!("/api/v1/tenants/acme/keys/{gid}/audit"), format!("/api/v1/tenants/acme/keys/{gid}/usage")] {
            expect_error(app.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
        }
        expect_error(app.rotate_key(gid).await, StatusCode::NOT_FOUND, "not_found").await;
        expect_error(app.revoke_key(gid, "x").await, StatusCode::NOT_FOUND, "not_found").await;
        let res = app.post("/api/v1/tenants/acme/keys", &json!({"service_user_id": globex_su_id, "name": "steal"})).await;
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        // Verifying globex's key as acme says nothing about it.
        let verdict = app.verify(globex_key["key"].as_str().expect("key"), None).await;
        assert_eq!(verdict["code"], "not_found");
        assert!(verdict["key_id"].is_null() && verdict["tenant"].is_null(), "{verdict}");
        // Nothing changed on globex's key.
        let after = expect_json(app.get_as(&globex_admin, &format!("/api/v1/tenants/globex/keys/{gid}")).await, StatusCode::OK).await;
        assert_eq!(after["status"], "active");
    }
}
