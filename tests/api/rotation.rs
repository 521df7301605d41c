//! Rotation with its overlap window, revocation and the lifecycle sweep, with a moved clock.

use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::{
    both_engines,
    helpers::{expect_error, expect_json},
    keys::rfc3339,
};

both_engines! {
    async fn old_key_works_until_cutoff_and_not_after(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let old = app.create_key(&su, json!({"expires_in_days": 90, "allowed_tools": ["whoami"]})).await;
        let old_key = old["key"].as_str().expect("key");
        let rotated_at = app.now();
        let rotation = expect_json(app.rotate_key(old["id"].as_str().expect("id")).await, StatusCode::CREATED).await;
        let new_key = rotation["new"]["key"].as_str().expect("new key shown once");
        assert_eq!(rotation["old"]["status"], "rotating");
        let cutoff = rotated_at + Duration::days(7);
        assert_eq!(rotation["old"]["expires_at"], rfc3339(cutoff));
        assert_eq!(rotation["new"]["rotated_from"], old["id"]);
        assert_eq!(rotation["new"]["name"], old["name"]);
        assert_eq!(rotation["new"]["allowed_tools"], json!(["whoami"]));
        assert_eq!(rotation["new"]["expires_at"], rfc3339(rotated_at + Duration::days(90)));

        app.clock.set(cutoff - Duration::seconds(1));
        assert_eq!(app.verify_code(old_key).await, "valid");
        assert_eq!(app.verify_code(new_key).await, "valid");
        app.clock.set(cutoff + Duration::seconds(1));
        assert_eq!(app.verify_code(old_key).await, "revoked");
        assert_eq!(app.verify_code(new_key).await, "valid");

        // The sweep records what verification already enforces, once.
        app.tick().await;
        app.tick().await;
        let old_now = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}", old["id"].as_str().expect("id"))).await, StatusCode::OK).await;
        assert_eq!(old_now["status"], "revoked");
        assert_eq!(old_now["revoked_reason"], "rotated");
        let audit = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}/audit", old["id"].as_str().expect("id"))).await, StatusCode::OK).await;
        let actions: Vec<_> = audit["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("action").to_owned()).collect();
        assert_eq!(actions, ["key.revoke", "key.rotate", "key.create"], "newest first, sweep once");
        assert_eq!(audit["items"][0]["actor"], "system");
    }

    async fn grace_never_extends_past_the_old_expiry(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let old = app.create_key(&su, json!({"expires_in_days": 3})).await;
        let old_expiry = old["expires_at"].clone();
        let rotation = expect_json(app.rotate_key(old["id"].as_str().expect("id")).await, StatusCode::CREATED).await;
        assert_eq!(rotation["old"]["expires_at"], old_expiry, "cutoff = min(old expiry, now + 7 days)");
        app.clock.advance(Duration::days(3) + Duration::seconds(1));
        assert_eq!(app.verify_code(old["key"].as_str().expect("key")).await, "expired");
    }

    async fn rotating_twice_or_a_revoked_key_is_409(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id");
        expect_json(app.rotate_key(id).await, StatusCode::CREATED).await;
        let keys_before = app.count("api_keys").await;
        expect_error(app.rotate_key(id).await, StatusCode::CONFLICT, "conflict").await;
        assert_eq!(app.count("api_keys").await, keys_before, "a refused rotation mints nothing");

        let other = app.create_key(&su, json!({})).await;
        let other_id = other["id"].as_str().expect("id");
        expect_json(app.revoke_key(other_id, "leaked").await, StatusCode::OK).await;
        expect_error(app.rotate_key(other_id).await, StatusCode::CONFLICT, "conflict").await;
        expect_error(app.revoke_key(other_id, "again").await, StatusCode::CONFLICT, "conflict").await;
        expect_error(app.rotate_key("doesnotexist0000").await, StatusCode::NOT_FOUND, "not_found").await;
    }

    async fn rotate_body_is_validated(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let path = format!("/api/v1/tenants/acme/keys/{}/rotate", key["id"].as_str().expect("id"));
        expect_error(app.post(&path, &json!({"expires_in_days": 400})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        expect_error(app.post(&path, &json!({"status": "active"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let still = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}", key["id"].as_str().expect("id"))).await, StatusCode::OK).await;
        assert_eq!(still["status"], "active", "a refused rotation leaves the key as it was");
        let rotation = expect_json(app.post(&path, &json!({"expires_in_days": 10})).await, StatusCode::CREATED).await;
        assert_eq!(rotation["new"]["expires_at"], rfc3339(app.now() + Duration::days(10)));
    }

    async fn revoke_takes_effect_at_once_and_sweep_marks_expiry(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"expires_in_days": 1})).await;
        let other = app.create_key(&su, json!({})).await;
        assert_eq!(app.verify_code(key["key"].as_str().expect("key")).await, "valid");
        expect_json(app.revoke_key(other["id"].as_str().expect("id"), "leaked").await, StatusCode::OK).await;
        assert_eq!(app.verify_code(other["key"].as_str().expect("key")).await, "revoked");

        app.clock.advance(Duration::days(1));
        app.tick().await;
        let expired = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}", key["id"].as_str().expect("id"))).await, StatusCode::OK).await;
        assert_eq!(expired["status"], "expired");
        let listed = expect_json(app.get("/api/v1/tenants/acme/keys?status=expired").await, StatusCode::OK).await;
        assert!(listed["items"].as_array().expect("items").iter().any(|k| k["id"] == key["id"]));
    }

    async fn concurrent_rotations_make_one_new_key(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let id = key["id"].as_str().expect("id");
        let keys_before = app.count("api_keys").await;
        let (a, b) = tokio::join!(app.rotate_key(id), app.rotate_key(id));
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
        assert_eq!(app.count("api_keys").await, keys_before + 1, "exactly one new key");
    }
}
