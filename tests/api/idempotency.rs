//! `Idempotency-Key` on the API's creates and rotations: a retry gets the
//! first answer (the same key, shown again) instead of a second key; another
//! request under the same key is 422; a burst mints once; the kept answer is
//! sealed, never stored in the clear; it lasts a day.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

async fn post_with_key(
    app: &TestApp,
    bearer: &str,
    path: &str,
    body: &Value,
    key: &str,
) -> Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

fn key_body(service_user: &str, name: &str) -> Value {
    json!({"service_user_id": service_user, "name": name, "expires_in_days": 30})
}

both_engines! {
    async fn a_retried_create_gets_the_first_answer_and_mints_once(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let body = key_body(&su, "deploy");
        let first = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &body, "create-1").await;
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first = expect_json(first, StatusCode::CREATED).await;
        let again = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &body, "create-1").await;
        assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap_or_default()), Some("true"));
        assert_eq!(again.headers().get("cache-control").map(|v| v.to_str().unwrap_or_default()), Some("no-store"));
        let again = expect_json(again, StatusCode::CREATED).await;
        assert_eq!(first, again, "the same answer, the same key");
        let keys = expect_json(app.get(&format!("/api/v1/tenants/acme/keys?service_user_id={su}")).await, StatusCode::OK).await;
        assert_eq!(keys["items"].as_array().map(Vec::len), Some(1), "{keys}");

        // The kept answer holds the key shown once: sealed, never in the clear.
        let plaintext = first["key"].as_str().expect("key");
        let stored = app.db.dump();
        assert!(!stored.contains(plaintext), "a key in the clear in the database");
        assert!(!stored.contains(crate::helpers::secret_of(plaintext).as_str()));

        // A new key for a new request mints again.
        let other = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &body, "create-2").await;
        let other = expect_json(other, StatusCode::CREATED).await;
        assert_ne!(other["id"], first["id"]);
    }

    async fn the_same_key_with_another_request_is_refused_and_changes_nothing(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let created = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &key_body(&su, "deploy"), "k").await;
        expect_json(created, StatusCode::CREATED).await;
        let before = app.count("api_keys").await;
        let changed = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &key_body(&su, "other-name"), "k").await;
        let err = expect_error(changed, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(err["error"]["message"].as_str().unwrap_or_default().contains("Idempotency-Key"), "{err}");
        // Another path under the same key is another request too.
        let elsewhere = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/service-users", &json!({"name": "x", "owner_email": "x@owner.test"}), "k").await;
        expect_error(elsewhere, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(app.count("api_keys").await, before);
        assert_eq!(app.count("service_users").await, 1 + 1, "ci-bot and the management owner only");
    }

    async fn bad_idempotency_keys_are_refused_before_anything_runs(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let before = app.count("api_keys").await;
        for bad in ["", &"x".repeat(256), "has space", "tab\tin"] {
            let res = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &key_body(&su, "deploy"), bad).await;
            expect_error(res, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
        }
        assert_eq!(app.count("api_keys").await, before);
        assert_eq!(app.count("idempotency_keys").await, 0);

        // The OpenAPI document offers the header on every tenant POST.
        let doc: Value = app.client.get(app.url("/api/openapi.json")).send().await.expect("doc").json().await.expect("json");
        for path in ["/api/v1/tenants/{tenant}/keys", "/api/v1/tenants/{tenant}/keys/{id}/rotate", "/api/v1/tenants/{tenant}/service-users", "/api/v1/tenants/{tenant}/webhooks"] {
            let params = doc["paths"][path]["post"]["parameters"].as_array().cloned().unwrap_or_default();
            assert!(params.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"), "{path}: {params:?}");
        }
    }

    async fn each_credential_has_its_own_keys(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let body = key_body(&su, "deploy");
        let mine = expect_json(post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &body, "shared").await, StatusCode::CREATED).await;
        let second_admin = app.management_key(&app.tenant).await;
        let theirs = post_with_key(&app, &second_admin, "/api/v1/tenants/acme/keys", &body, "shared").await;
        assert!(theirs.headers().get("idempotent-replayed").is_none(), "another credential never sees my answer");
        let theirs = expect_json(theirs, StatusCode::CREATED).await;
        assert_ne!(mine["id"], theirs["id"]);
        // A refused credential pins nothing: the rightful retry still runs.
        let refused = post_with_key(&app, "ks_bogus_credential", "/api/v1/tenants/acme/keys", &body, "fresh").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let ok = post_with_key(&app, &app.admin_key, "/api/v1/tenants/acme/keys", &body, "fresh").await;
        expect_json(ok, StatusCode::CREATED).await;
    }

    async fn a_concurrent_burst_under_one_key_mints_once(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let body = key_body(&su, "deploy");
        let before = app.count("api_keys").await;
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let request = app.client.post(app.url("/api/v1/tenants/acme/keys")).bearer_auth(&app.admin_key).header("Idempotency-Key", "burst").json(&body);
            burst.spawn(async move {
                let res = request.send().await.expect("request");
                let status = res.status();
                (status, res.json::<Value>().await.expect("json"))
            });
        }
        let mut ids = std::collections::BTreeSet::new();
        for (status, body) in burst.join_all().await {
            match status {
                StatusCode::CREATED => {
                    ids.insert(body["id"].as_str().expect("id").to_owned());
                }
                StatusCode::CONFLICT => {}
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(ids.len(), 1, "every 201 is the one key: {ids:?}");
        assert_eq!(app.count("api_keys").await, before + 1, "minted once");
    }

    async fn a_retried_rotation_rotates_once_and_answers_last_a_day(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id");
        let path = format!("/api/v1/tenants/acme/keys/{id}/rotate");
        let first = expect_json(post_with_key(&app, &app.admin_key, &path, &json!({}), "rot").await, StatusCode::CREATED).await;
        let again = expect_json(post_with_key(&app, &app.admin_key, &path, &json!({}), "rot").await, StatusCode::CREATED).await;
        assert_eq!(first["new"]["id"], again["new"]["id"]);
        assert_eq!(app.count("api_keys").await, 1 + 1 + 1, "management key, the key, one successor");

        // A day later the answer is gone (the scheduler's purge) and the same
        // request runs again (refused: the key is rotating now).
        app.clock.advance(time::Duration::hours(24) + time::Duration::seconds(1));
        app.tick().await;
        assert_eq!(app.count("idempotency_keys").await, 0, "the purge dropped the day-old answer");
        let later = post_with_key(&app, &app.admin_key, &path, &json!({}), "rot").await;
        assert!(later.headers().get("idempotent-replayed").is_none());
        assert_eq!(later.status(), StatusCode::CONFLICT, "rotating a rotating key");
    }
}
