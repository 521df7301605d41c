use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// The service-user audit lines: (action, reason).
async fn su_audit(app: &TestApp, su: &str) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, reason FROM audit_events WHERE service_user_id = $1 AND action LIKE 'service_user.%' ORDER BY id",
    )
    .bind(su)
    .fetch_all(app.state.pool())
    .await
    .expect("audit");
    rows.into_iter()
        .map(|(action, reason)| {
            (
                action,
                serde_json::from_str(&reason.unwrap_or_default()).expect("json change"),
            )
        })
        .collect()
}

both_engines! {
    async fn create_and_list(app: TestApp) {
        let id = app.create_service_user("ci-bot").await;
        let list = expect_json(app.get("/api/v1/tenants/acme/service-users").await, StatusCode::OK).await;
        let names: Vec<_> = list["items"].as_array().expect("items").iter().map(|s| s["name"].as_str().expect("name").to_owned()).collect();
        assert!(names.contains(&"ci-bot".to_owned()), "{list}");
        assert!(list["items"].as_array().expect("items").iter().any(|s| s["id"] == id.as_str()));
    }

    async fn duplicate_name_is_conflict(app: TestApp) {
        app.create_service_user("ci-bot").await;
        let res = app.post("/api/v1/tenants/acme/service-users", &json!({"name": "ci-bot", "owner_email": "a@b.test"})).await;
        expect_error(res, StatusCode::CONFLICT, "conflict").await;
    }

    async fn edit_disable_enable_are_audited_with_before_and_after(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let plain = key["key"].as_str().expect("key");
        let path = format!("/api/v1/tenants/acme/service-users/{su}");
        let res = app.client.patch(app.url(&path)).bearer_auth(&app.admin_key)
            .json(&json!({"name": "deploy-bot", "owner_email": "New@Acme.test", "description": "deploys"})).send().await.expect("patch");
        let edited = expect_json(res, StatusCode::OK).await;
        assert_eq!((edited["name"].as_str(), edited["owner_email"].as_str(), edited["description"].as_str()), (Some("deploy-bot"), Some("new@acme.test"), Some("deploys")));
        let res = app.client.patch(app.url(&path)).bearer_auth(&app.admin_key).json(&json!({"description": null})).send().await.expect("patch");
        let cleared = expect_json(res, StatusCode::OK).await;
        assert!(cleared["description"].is_null() && cleared["name"] == "deploy-bot", "{cleared}");

        let disabled = expect_json(app.post(&format!("{path}/disable"), &json!({})).await, StatusCode::OK).await;
        assert!(disabled["disabled_at"].is_string(), "{disabled}");
        assert_eq!(app.verify_code(plain).await, "disabled", "every key refused at once");
        expect_json(app.post(&format!("{path}/disable"), &json!({})).await, StatusCode::OK).await;
        let enabled = expect_json(app.post(&format!("{path}/enable"), &json!({})).await, StatusCode::OK).await;
        assert!(enabled["disabled_at"].is_null());
        assert_eq!(app.verify_code(plain).await, "valid");

        let audit = su_audit(&app, &su).await;
        let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, ["service_user.create", "service_user.update", "service_user.update", "service_user.disable", "service_user.enable"], "a repeated disable records nothing");
        assert_eq!(audit[1].1["before"]["name"], "ci-bot");
        assert_eq!(audit[1].1["after"]["owner_email"], "new@acme.test");
        assert_eq!(audit[3].1["before"]["disabled"], false);
        assert_eq!(audit[3].1["after"]["disabled"], true);
    }

    async fn bad_edits_change_nothing(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        app.create_service_user("taken").await;
        let path = format!("/api/v1/tenants/acme/service-users/{su}");
        let patch = |body: serde_json::Value| app.client.patch(app.url(&path)).bearer_auth(&app.admin_key).json(&body).send();
        for (body, status, code) in [
            (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"owner_email": "not an address"}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"owner_email": "a(b)@example.com"}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"name": ""}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"tenant_id": "x"}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"disabled_at": null}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"name": "taken"}), StatusCode::CONFLICT, "conflict"),
        ] {
            expect_error(patch(body.clone()).await.expect("patch"), status, code).await;
        }
        let unchanged = expect_json(app.get(&path).await, StatusCode::OK).await;
        assert_eq!(unchanged["name"], "ci-bot");
        assert_eq!(su_audit(&app, &su).await.len(), 1, "only the creation is audited");

        // Another tenant's service user does not exist here.
        let globex = app.create_tenant("globex").await;
        let globex_admin = app.management_key(&globex).await;
        let res = app.client.patch(app.url(&path.replace("acme", "globex"))).bearer_auth(&globex_admin).json(&json!({"name": "stolen"})).send().await.expect("patch");
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        expect_error(app.post_as(&globex_admin, &format!("/api/v1/tenants/globex/service-users/{su}/disable"), &json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(expect_json(app.get(&path).await, StatusCode::OK).await["name"], "ci-bot");
    }
}
