//! Key creation, reading, listing: `/api/v1/tenants/{tenant}/keys`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

both_engines! {
    async fn create_shows_the_key_once(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let created = app.create_key(&su, json!({"expires_in_days": 30, "allowed_tools": ["whoami", "files/*"]})).await;
        let key = created["key"].as_str().expect("plaintext key in the create response");
        let id = created["id"].as_str().expect("id");
        assert!(key.starts_with(&format!("ks_{id}_")), "{key}");
        assert_eq!(created["status"], "active");
        assert_eq!(created["allowed_tools"], json!(["whoami", "files/*"]));
        assert_eq!(created["hint"].as_str().expect("hint"), &key[key.len() - 4..]);

        let read = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await, StatusCode::OK).await;
        assert!(read.get("key").is_none(), "the plaintext must never be shown again: {read}");
        let text = read.to_string();
        assert!(!text.contains(key) && !text.contains("hash"), "{text}");

        let listed = expect_json(app.get("/api/v1/tenants/acme/keys").await, StatusCode::OK).await;
        assert!(!listed.to_string().contains(key));
        assert_eq!(app.verify_code(key).await, "valid");
    }

    async fn create_response_is_not_cacheable(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let res = app.post("/api/v1/tenants/acme/keys", &json!({"service_user_id": su, "name": "k"})).await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    async fn default_and_explicit_expiry(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let now = app.now();
        let default = app.create_key(&su, json!({})).await;
        assert_eq!(default["expires_at"], rfc3339(now + time::Duration::days(90)));
        let at = now + time::Duration::days(10);
        let explicit = app.create_key(&su, json!({"expires_at": rfc3339(at)})).await;
        assert_eq!(explicit["expires_at"], rfc3339(at));
    }

    async fn list_filters_and_paginates(app: TestApp) {
        let su1 = app.create_service_user("one").await;
        let su2 = app.create_service_user("two").await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(app.create_key(&su1, json!({})).await["id"].as_str().expect("id").to_owned());
            app.clock.advance(time::Duration::seconds(1));
        }
        let other = app.create_key(&su2, json!({})).await;
        let revoked = ids[0].clone();
        assert_eq!(app.revoke_key(&revoked, "test").await.status(), StatusCode::OK);

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
            let page = expect_json(app.get(&format!("/api/v1/tenants/acme/keys?service_user_id={su1}&limit=2{q}")).await, StatusCode::OK).await;
            let items = page["items"].as_array().expect("items");
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|k| k["id"].as_str().expect("id").to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first, "every key once, newest first");
        assert!(!seen.contains(&other["id"].as_str().expect("id").to_owned()));

        let revoked_only = expect_json(app.get("/api/v1/tenants/acme/keys?status=revoked").await, StatusCode::OK).await;
        let revoked_ids: Vec<_> = revoked_only["items"].as_array().expect("items").iter().map(|k| k["id"].clone()).collect();
        assert_eq!(revoked_ids, vec![json!(revoked)]);

        let res = app.get("/api/v1/tenants/acme/keys?status=bogus").await;
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_query").await;
        let res = app.get("/api/v1/tenants/acme/keys?cursor=garbage").await;
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    }

    async fn bad_input_is_refused_and_writes_nothing(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let (keys_before, audit_before) = (app.count("api_keys").await, app.count("audit_events").await);
        let body = |extra: Value| {
            let mut b = json!({"service_user_id": su, "name": "deploy"});
            b.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            b
        };
        let past = rfc3339(app.now() - time::Duration::minutes(1));
        let too_far = rfc3339(app.now() + time::Duration::days(366));
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (body(json!({"tenant_id": "other"})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"hash": "00"})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"status": "revoked"})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"name": ""})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"name": "x".repeat(101)})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"expires_at": past})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"expires_at": too_far})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"expires_at": "tomorrow"})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"expires_in_days": 366})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"expires_in_days": 0})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"expires_in_days": 5, "expires_at": rfc3339(app.now() + time::Duration::days(5))})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"allowed_tools": []})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"allowed_tools": ["bad tool"]})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"scopes": ["has space"]})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (body(json!({"service_user_id": "nope"})), StatusCode::NOT_FOUND, "not_found"),
            (json!({"name": "deploy"}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ];
        for (body, status, code) in cases {
            let res = app.post("/api/v1/tenants/acme/keys", &body).await;
            expect_error(res, status, code).await;
        }

        let malformed = app.client.post(app.url("/api/v1/tenants/acme/keys")).bearer_auth(&app.admin_key)
            .header("content-type", "application/json").body("{\"name\": ").send().await.expect("request");
        expect_error(malformed, StatusCode::BAD_REQUEST, "malformed_json").await;

        let no_type = app.client.post(app.url("/api/v1/tenants/acme/keys")).bearer_auth(&app.admin_key)
            .body(body(json!({})).to_string()).send().await.expect("request");
        expect_error(no_type, StatusCode::BAD_REQUEST, "unsupported_media_type").await;

        let huge = body(json!({"name": "x".repeat(70 * 1024)}));
        let res = app.post("/api/v1/tenants/acme/keys", &huge).await;
        expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

        assert_eq!(app.count("api_keys").await, keys_before, "no key written by bad input");
        assert_eq!(app.count("audit_events").await, audit_before, "no audit event written by bad input");
    }

    async fn service_user_bad_input(app: TestApp) {
        let before = app.count("service_users").await;
        for (body, status) in [
            (json!({"name": "bot", "owner_email": "not-an-email"}), StatusCode::UNPROCESSABLE_ENTITY),
            (json!({"name": "  ", "owner_email": "a@b.test"}), StatusCode::UNPROCESSABLE_ENTITY),
            (json!({"name": "bot"}), StatusCode::UNPROCESSABLE_ENTITY),
            (json!({"name": "bot", "owner_email": "a@b.test", "tenant_id": "x"}), StatusCode::UNPROCESSABLE_ENTITY),
            (json!({"name": "bot", "owner_email": "a@b.test", "description": "d".repeat(1001)}), StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let res = app.post("/api/v1/tenants/acme/service-users", &body).await;
            assert_eq!(res.status(), status, "{body}");
        }
        assert_eq!(app.count("service_users").await, before);
    }
}

both_engines! {
    async fn keys_survive_a_restart(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let created = app.create_key(&su, json!({})).await;
        let db = app.stop().await;
        let app = TestApp::spawn_on(db).await;
        assert_eq!(app.verify_code(created["key"].as_str().expect("key")).await, "valid");
    }
}

pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

both_engines! {
    async fn the_sql_state_filters_agree_with_the_state_definition(app: TestApp) {
        use keysmith_verify::KeyState;
        let su = app.create_service_user("grid").await;
        let now = app.now().unix_timestamp();
        let mut rows = Vec::new();
        for status in ["active", "rotating", "expired", "revoked"] {
            for expires_at in [now - 10, now, now + 10] {
                for cutoff_at in [None, Some(now - 5), Some(now), Some(now + 5)] {
                    let key = app.create_key(&su, json!({})).await;
                    let id = key["id"].as_str().expect("id").to_owned();
                    sqlx::query("UPDATE api_keys SET status = $1, expires_at = $2, cutoff_at = $3 WHERE id = $4")
                        .bind(status).bind(expires_at).bind(cutoff_at).bind(&id)
                        .execute(app.state.pool()).await.expect("update");
                    rows.push((id, KeyState::at(status, expires_at, cutoff_at, now)));
                }
            }
        }
        for state in KeyState::ALL {
            let sql = format!("SELECT id FROM api_keys WHERE service_user_id = $1 AND {}", state.sql_condition("$2"));
            let mut found: Vec<String> = sqlx::query_scalar(&sql).bind(&su).bind(now).fetch_all(app.state.pool()).await.expect("query");
            let mut expected: Vec<String> = rows.iter().filter(|(_, s)| *s == state).map(|(id, _)| id.clone()).collect();
            found.sort();
            expected.sort();
            assert!(!expected.is_empty(), "the grid covers {state:?}");
            assert_eq!(found, expected, "{state:?}");
            // The API's filter is the same condition.
            let listed = expect_json(app.get(&format!("/api/v1/tenants/acme/keys?status={}&service_user_id={su}&limit=200", state.as_str())).await, StatusCode::OK).await;
            assert_eq!(listed["items"].as_array().expect("items").len(), expected.len(), "{state:?}");
        }
    }
}
