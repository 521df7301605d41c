//! `/api/v1/tenants/{tenant}/admins`: a management key lists its tenant's
//! admins and changes or removes their roles; the account's open session
//! follows at once.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    admin::{PASSWORD, account, admin_user, browser, sign_in},
    both_engines,
    helpers::{expect_error, expect_json},
    invitations::accept_invitation,
};

both_engines! {
    async fn a_management_key_changes_and_removes_roles_in_its_tenant(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        account(&app, "loner@acme.test", false).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;

        let list = expect_json(app.get("/api/v1/tenants/acme/admins").await, StatusCode::OK).await;
        assert_eq!(list["items"], json!([{"email": "admin@acme.test", "role": "admin"}]));

        let put = |email: &str, body| app.client.put(app.url(&format!("/api/v1/tenants/acme/admins/{email}"))).bearer_auth(&app.admin_key).json(&body).send();
        expect_error(put("admin@acme.test", json!({"role": "emperor"})).await.expect("put"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        expect_error(put("nobody@acme.test", json!({"role": "viewer"})).await.expect("put"), StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(app.count("admin_users").await, 2, "no account created");
        assert_eq!(client.get(app.url("/admin/api-keys")).send().await.expect("page").status(), StatusCode::OK, "refusals change nothing");

        let body = expect_json(put("admin@acme.test", json!({"role": "viewer"})).await.expect("put"), StatusCode::OK).await;
        assert_eq!(body["role"], "viewer");
        assert_eq!(client.get(app.url("/admin/api-keys")).send().await.expect("page").status(), StatusCode::SEE_OTHER, "lowered: the open session ended");
        // An account outside the tenant is the same `404` as no account: it
        // joins by accepting an invitation, not by the key's say-so.
        expect_error(put("loner@acme.test", json!({"role": "admin"})).await.expect("put"), StatusCode::NOT_FOUND, "not_found").await;
        expect_json(app.post("/api/v1/tenants/acme/invitations", &json!({"email": "loner@acme.test", "role": "viewer"})).await, StatusCode::ACCEPTED).await;
        accept_invitation(&app, "loner@acme.test", "acme").await;
        expect_json(put("loner@acme.test", json!({"role": "admin"})).await.expect("put"), StatusCode::OK).await;

        let delete = |email: &str| app.client.delete(app.url(&format!("/api/v1/tenants/acme/admins/{email}"))).bearer_auth(&app.admin_key).send();
        assert_eq!(delete("admin@acme.test").await.expect("delete").status(), StatusCode::NO_CONTENT);
        expect_error(delete("admin@acme.test").await.expect("delete"), StatusCode::NOT_FOUND, "not_found").await;
        let list = expect_json(app.get("/api/v1/tenants/acme/admins").await, StatusCode::OK).await;
        assert_eq!(list["items"], json!([{"email": "loner@acme.test", "role": "admin"}]));

        // Another tenant's key cannot touch acme's admins.
        let globex = app.create_tenant("globex").await;
        let globex_key = app.management_key(&globex).await;
        let res = app.client.delete(app.url("/api/v1/tenants/acme/admins/loner@acme.test")).bearer_auth(&globex_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action IN ('admin.grant', 'admin.revoke') AND actor LIKE 'key:%'")
            .fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(audited, 3, "two role changes and a removal, by the key");
    }
}
