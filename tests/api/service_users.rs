use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{expect_error, expect_json},
};

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
}
