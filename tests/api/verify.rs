//! `POST /api/v1/verify`: every verdict code.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_engines,
    helpers::{expect_error, expect_json},
};
use keysmith_verify::{SqlVerifier, SystemClock, VerifyCode};

both_engines! {
    async fn every_code(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami", "files/*"], "expires_in_days": 5})).await;
        let plain = key["key"].as_str().expect("key");

        let ok = app.verify(plain, Some("files/read")).await;
        assert_eq!(ok["valid"], true);
        assert_eq!(ok["code"], "valid");
        assert_eq!(ok["key_id"], key["id"]);
        assert_eq!(ok["service_user_id"], su.as_str());
        assert_eq!(ok["tenant"], "acme");
        assert_eq!(ok["expires_at"], key["expires_at"]);

        let denied = app.verify(plain, Some("delete_everything")).await;
        assert_eq!((denied["valid"].clone(), denied["code"].clone()), (json!(false), json!("tool_not_allowed")));

        assert_eq!(app.verify_code("not a key").await, "malformed");
        // One character changed: the checksum catches it.
        let mut typo = plain.to_owned();
        let last = typo.pop().expect("char");
        typo.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(app.verify_code(&typo).await, "malformed");
        // Well-formed, right checksum, unknown id.
        let unknown = keysmith_verify::ApiKey::generate(&keysmith_verify::KeyPrefix::default());
        assert_eq!(app.verify_code(unknown.expose()).await, "not_found");

        sqlx::query("UPDATE service_users SET disabled_at = 1 WHERE id = $1").bind(&su).execute(app.state.pool()).await.expect("disable");
        assert_eq!(app.verify_code(plain).await, "disabled");
        sqlx::query("UPDATE service_users SET disabled_at = NULL WHERE id = $1").bind(&su).execute(app.state.pool()).await.expect("enable");

        app.clock.advance(time::Duration::days(5));
        assert_eq!(app.verify_code(plain).await, "expired");
        app.clock.advance(time::Duration::days(-5));
        app.revoke_key(key["id"].as_str().expect("id"), "done").await;
        let revoked = app.verify(plain, None).await;
        assert_eq!(revoked["code"], "revoked");
        assert_eq!(revoked["key_id"], key["id"], "a known key's refusal names it");
    }

    async fn verify_requires_a_management_key_and_valid_body(app: TestApp) {
        let res = app.client.post(app.url("/api/v1/verify")).json(&json!({"key": "x"})).send().await.expect("request");
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let res = app.post("/api/v1/verify", &json!({"token": "x"})).await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }

    async fn a_verify_scope_key_may_verify_and_do_nothing_else(app: TestApp) {
        let verify_only = app.management_key_with(&app.tenant, keysmith::domain::Scope::verify()).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let res = app.post_as(&verify_only, "/api/v1/verify", &json!({"key": key["key"]})).await;
        assert_eq!(expect_json(res, StatusCode::OK).await["code"], "valid");
        let keys_before = app.count("api_keys").await;
        for (method, path, body) in [
            ("GET", "/api/v1/tenants/acme/keys".to_owned(), None),
            ("GET", "/api/v1/tenants/acme/service-users".to_owned(), None),
            ("POST", "/api/v1/tenants/acme/keys".to_owned(), Some(json!({"service_user_id": su, "name": "minted"}))),
            ("POST", format!("/api/v1/tenants/acme/keys/{}/revoke", key["id"].as_str().expect("id")), Some(json!({}))),
        ] {
            let res = if method == "GET" { app.get_as(&verify_only, &path).await } else { app.post_as(&verify_only, &path, body.as_ref().expect("body")).await };
            expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
        }
        assert_eq!(app.count("api_keys").await, keys_before, "nothing minted");
        assert_eq!(app.verify_code(key["key"].as_str().expect("key")).await, "valid", "nothing revoked");
    }

    async fn malformed_keys_never_reach_the_database(app: TestApp) {
        // A verifier over a closed pool: any query would fail with a backend error.
        let pool = app.state.pool().clone();
        let verifier = SqlVerifier::new(pool.clone(), app.state.peppers.clone(), Arc::new(SystemClock));
        pool.close().await;
        let verdict = verifier.verify("ks_garbage", None, None).await.expect("no database needed");
        assert_eq!(verdict.expect_err("refused").code, VerifyCode::Malformed);
        let wellformed = keysmith_verify::ApiKey::generate(&keysmith_verify::KeyPrefix::default());
        assert!(verifier.verify(wellformed.expose(), None, None).await.is_err(), "a well-formed key does query (and fails closed)");
    }
}
