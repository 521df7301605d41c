//! Health, readiness, metrics and the OpenAPI document.

use reqwest::StatusCode;

use crate::{both_engines, helpers::expect_json};

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

/// The line of `name` in `text` whose labels include every one of `labels`.
pub(crate) fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
}

pub(crate) async fn metrics_text(app: &crate::helpers::TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

both_engines! {
    async fn key_events_are_counted_wherever_they_come_from(app: TestApp) {
        use keysmith::domain::{Actor, AdminId, keys};
        // Metrics name tenants by slug; the recorder is the process's, so this
        // test's tenant gets a slug no other test uses.
        let slug = format!("metrics-{}", app.tenant.id.as_str().to_ascii_lowercase());
        let tenant = app.create_tenant(&slug).await;
        let admin = app.management_key(&tenant).await;
        let su = app.post_as(&admin, &format!("/api/v1/tenants/{slug}/service-users"), &serde_json::json!({"name": "ci-bot", "owner_email": "ci@owner.test"})).await;
        let su = expect_json(su, StatusCode::CREATED).await;
        let key = app.post_as(&admin, &format!("/api/v1/tenants/{slug}/keys"), &serde_json::json!({"service_user_id": su["id"], "name": "deploy"})).await;
        let key = expect_json(key, StatusCode::CREATED).await;
        let id = key["id"].as_str().expect("id");
        let as_admin = Actor::User { id: AdminId::new("u1"), email: "admin@acme.test".into() };
        let rotation = keys::rotate(app.state.pool(), &app.state.peppers, &tenant, &keysmith::domain::KeyId::new(id), None, i64::MAX, &as_admin, app.now()).await.expect("rotate");
        keys::revoke(app.state.pool(), &tenant, &rotation.new.row.id, "done", &Actor::Cli, app.now()).await.expect("revoke");
        let text = metrics_text(&app).await;
        let label = format!("tenant=\"{slug}\"");
        for (event, via) in [("created", "api"), ("rotated", "admin_ui"), ("revoked", "cli")] {
            let count = sample(&text, "keysmith_key_events_total", &[&format!("event=\"{event}\""), &label, &format!("via=\"{via}\"")]);
            assert_eq!(count, Some(1.0), "{event} via {via}:\n{text}");
        }
        assert!(!text.contains(tenant.id.as_str()), "tenants are labelled by slug, not internal id");
    }

    async fn layer_metrics_are_exported(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, serde_json::json!({})).await;
        let upstream = crate::gateway::plain_upstream().await;
        let gateway = crate::gateway::gateway(&app, &upstream).await;
        let res = app.client.get(format!("{gateway}/anything")).bearer_auth(key["key"].as_str().expect("key")).send().await.expect("send");
        assert_eq!(res.status(), StatusCode::OK);
        let text = metrics_text(&app).await;
        assert!(sample(&text, "keysmith_layer_requests_total", &["outcome=\"valid\""]).is_some_and(|n| n >= 1.0), "{text}");
        assert!(text.contains("keysmith_layer_verify_seconds"), "{text}");
        assert!(text.contains("keysmith_audit_queue_depth"), "{text}");
    }
}

both_engines! {
    async fn without_a_token_metrics_answer_only_direct_local_clients(app: TestApp) {
        // (The gateway's /metrics is judged by the same `metrics_allowed`.)
        let metrics = app.url("/metrics");
        let direct = app.client.get(&metrics).send().await.expect("metrics");
        assert_eq!(direct.status(), StatusCode::OK, "a client on this host");
        // Through a reverse proxy on the same host every request comes from
        // loopback: a forwarding header means someone else asked.
        for (header, value) in [("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9"), ("x-real-ip", "203.0.113.9")] {
            let res = app.client.get(&metrics).header(header, value).send().await.expect("metrics");
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "with {header}");
            assert!(!res.text().await.expect("text").contains("keysmith_"), "no metric leaks in the refusal");
        }
    }
}

#[tokio::test]
async fn metrics_can_require_a_token_or_move_to_their_own_address() {
    use crate::helpers::{Engine, TestApp, TestDb};
    let env = [("KEYSMITH_METRICS_TOKEN", "scrape-secret-123".to_owned())];
    let app = TestApp::spawn_with(TestDb::new(Engine::Sqlite).await, &env, None).await;
    let get = |token: Option<&'static str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(
        get(None).await.expect("get").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(Some("wrong")).await.expect("get").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(Some("scrape-secret-123")).await.expect("get").status(),
        StatusCode::OK
    );

    let env = [("KEYSMITH_METRICS_BIND", "127.0.0.1:0".to_owned())];
    let app = TestApp::spawn_with(TestDb::new(Engine::Sqlite).await, &env, None).await;
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND,
        "not beside the API"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _server = keysmith::startup::serve_metrics(app.state.clone(), listener).expect("serve");
    let res = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .expect("text")
            .contains("keysmith_emails_sent_total")
    );
}
