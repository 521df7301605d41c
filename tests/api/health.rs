//! Health, readiness, metrics and the OpenAPI document.

use reqwest::StatusCode;

use crate::both_engines;

both_engines! {
    async fn probes_and_openapi(app: TestApp) {
        let health = app.client.get(app.url("/healthz")).send().await.expect("healthz");
        assert_eq!(health.status(), StatusCode::OK);
        let ready = app.client.get(app.url("/readyz")).send().await.expect("readyz");
        assert_eq!(ready.status(), StatusCode::OK);

        let doc: serde_json::Value = app.client.get(app.url("/api/openapi.json")).send().await.expect("openapi").json().await.expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/tenants/{tenant}/service-users",
            "/api/v1/tenants/{tenant}/keys",
            "/api/v1/tenants/{tenant}/keys/{id}",
            "/api/v1/tenants/{tenant}/keys/{id}/rotate",
            "/api/v1/tenants/{tenant}/keys/{id}/revoke",
            "/api/v1/tenants/{tenant}/keys/{id}/audit",
            "/api/v1/tenants/{tenant}/keys/{id}/usage",
            "/api/v1/verify",
        ] {
            assert!(paths.contains_key(path), "OpenAPI lacks {path}");
        }
        assert!(doc["components"]["schemas"]["CreatedKey"].is_object());

        app.verify("garbage", None).await;
        let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains("keysmith_verifications_total{code=\"malformed\"} 1"), "{metrics}");
    }

    async fn readiness_fails_when_the_database_is_gone(app: TestApp) {
        app.state.pool().close().await;
        let ready = app.client.get(app.url("/readyz")).send().await.expect("readyz");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let res = app.get("/api/v1/tenants/acme/keys").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "fail closed, never a pass");
    }
}
