//! `POST /api/v1/audit-events`: batches of tool calls from a remote gateway,
//! stored under the delivering key's tenant, once each, all or none.

use keysmith::domain::Scope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

const PATH: &str = "/api/v1/audit-events";

/// A key of `acme`: `(key id, service user id)`.
async fn acme_key(app: &TestApp) -> (String, String) {
    let su = app.create_service_user("agent").await;
    let key = app.create_key(&su, json!({})).await;
    (key["id"].as_str().expect("id").to_owned(), su)
}

/// A well-formed event for `key`, numbered `n`.
fn event(app: &TestApp, (key_id, su): &(String, String), n: usize) -> Value {
    let at = app
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    json!({
        "event_id": format!("evt-{n:016}"),
        "key_id": key_id,
        "service_user_id": su,
        "subject": format!("tool_{n}"),
        "outcome": "allowed",
        "reason": "valid",
        "request_id": format!("req-{n}"),
        "at": at,
        "status": 200,
        "duration_us": 1500,
    })
}

async fn calls_stored(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'tool.call' AND event_id IS NOT NULL",
    )
    .fetch_one(app.state.pool())
    .await
    .expect("count");
    n
}

both_engines! {
    async fn a_batch_is_stored_once_under_the_callers_tenant(app: TestApp) {
        let key = acme_key(&app).await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let events: Vec<Value> = (0..3).map(|n| event(&app, &key, n)).collect();
        let batch = json!({"events": events});
        let res = app.post_as(&verify_key, PATH, &batch).await;
        assert_eq!(expect_json(res, StatusCode::OK).await, json!({"stored": 3, "duplicates": 0}));
        // The answer was lost; the gateway sends the same batch again.
        let res = app.post_as(&verify_key, PATH, &batch).await;
        assert_eq!(expect_json(res, StatusCode::OK).await, json!({"stored": 0, "duplicates": 3}));
        assert_eq!(calls_stored(&app).await, 3);

        let listed = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}/audit", key.0)).await, StatusCode::OK).await;
        let items = listed["items"].as_array().expect("items");
        let mut tools: Vec<&str> = items.iter().filter(|e| e["action"] == "tool.call").map(|e| e["tool"].as_str().expect("tool")).collect();
        tools.sort_unstable();
        assert_eq!(tools, ["tool_0", "tool_1", "tool_2"]);
        let first = items.iter().find(|e| e["tool"] == "tool_1").expect("event");
        assert_eq!(first["service_user_id"], key.1.as_str());
        assert_eq!(first["actor"], format!("key:{}", key.0));
        assert_eq!((&first["outcome"], &first["reason"], &first["status"], &first["duration_us"], &first["request_id"]),
            (&json!("allowed"), &json!("valid"), &json!(200), &json!(1500), &json!("req-1")));
        let (tenant,): (String,) = sqlx::query_as("SELECT DISTINCT tenant_id FROM audit_events WHERE event_id IS NOT NULL")
            .fetch_one(app.state.pool()).await.expect("tenant");
        assert_eq!(tenant, app.tenant.id.as_str());
        let shown = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}", key.0)).await, StatusCode::OK).await;
        assert!(shown["last_used_at"].is_string(), "an allowed call marks the key used: {shown}");

        // A batch overlapping the stored one stores only what is new.
        let overlapping = json!({"events": [event(&app, &key, 2), event(&app, &key, 3)]});
        let res = app.post_as(&verify_key, PATH, &overlapping).await;
        assert_eq!(expect_json(res, StatusCode::OK).await, json!({"stored": 1, "duplicates": 1}));
        assert_eq!(calls_stored(&app).await, 4);
    }

    async fn the_same_batch_sent_at_once_many_times_is_stored_once(app: TestApp) {
        let key = acme_key(&app).await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let events: Vec<Value> = (0..20).map(|n| event(&app, &key, n)).collect();
        let batch = json!({"events": events});
        let sends = (0..8).map(|_| {
            let (client, url, key, batch) = (app.client.clone(), app.url(PATH), verify_key.clone(), batch.clone());
            tokio::spawn(async move { client.post(url).bearer_auth(key).json(&batch).send().await.expect("send") })
        });
        let mut stored = 0;
        for res in futures_util::future::join_all(sends).await {
            let body = expect_json(res.expect("task"), StatusCode::OK).await;
            assert_eq!(body["stored"].as_u64().expect("stored") + body["duplicates"].as_u64().expect("duplicates"), 20);
            stored += body["stored"].as_u64().expect("stored");
        }
        assert_eq!(stored, 20, "each event stored by exactly one of the deliveries");
        assert_eq!(calls_stored(&app).await, 20);
    }

    async fn another_tenants_key_cannot_post_events_for_acme(app: TestApp) {
        let key = acme_key(&app).await;
        let globex = app.create_tenant("globex").await;
        let globex_verify = app.management_key_with(&globex, Scope::verify()).await;
        // Events of acme's key, alone or hidden among a real one's.
        let batch = json!({"events": [event(&app, &key, 0)]});
        let res = app.post_as(&globex_verify, PATH, &batch).await;
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        let globex_admin = app.management_key(&globex).await;
        let res = app.post_as(&globex_admin, PATH, &batch).await;
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        // A key that exists nowhere is the same answer: nothing tells them apart.
        let mut unknown = event(&app, &key, 1);
        unknown["key_id"] = json!("AAAAAAAAAAAAAAAA");
        let res = app.post_as(&globex_verify, PATH, &json!({"events": [unknown]})).await;
        let unknown_body = expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = app.post_as(&globex_verify, PATH, &batch).await;
        assert_eq!(expect_error(res, StatusCode::NOT_FOUND, "not_found").await, unknown_body);
        assert_eq!(calls_stored(&app).await, 0);
        // acme's own verify key may.
        let acme_verify = app.management_key_with(&app.tenant, Scope::verify()).await;
        let res = app.post_as(&acme_verify, PATH, &batch).await;
        expect_json(res, StatusCode::OK).await;
        assert_eq!(calls_stored(&app).await, 1);
    }

    async fn bad_batches_are_refused_whole_and_store_nothing(app: TestApp) {
        let key = acme_key(&app).await;
        let verify_key = app.management_key_with(&app.tenant, Scope::verify()).await;
        let good = event(&app, &key, 0);
        let with = |field: &str, value: Value| {
            let mut e = event(&app, &key, 1);
            if value.is_null() && field == "drop" { return e; }
            e[field] = value;
            e
        };
        let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("time");
        let cases: Vec<(&str, Value)> = vec![
            ("outcome", with("outcome", json!("maybe"))),
            ("reason", with("reason", json!("because"))),
            ("reason", with("reason", json!("revoked"))),
            ("subject", with("subject", json!("x".repeat(513)))),
            ("subject", with("subject", json!(""))),
            ("event_id", with("event_id", json!("short"))),
            ("event_id", with("event_id", json!("has spaces in it!!"))),
            ("request_id", with("request_id", json!("r".repeat(129)))),
            ("at", with("at", json!("yesterday"))),
            ("at", with("at", json!(fmt(app.now() + time::Duration::hours(1))))),
            ("at", with("at", json!(fmt(app.now() - time::Duration::days(400))))),
            ("status", with("status", json!(700))),
            ("duration_us", with("duration_us", json!(-1))),
            ("key_id", with("key_id", json!("k".repeat(65)))),
            ("service_user_id", with("service_user_id", json!("AAAAAAAAAAAAAAAA"))),
            ("tenant_id", with("tenant_id", json!("someone-else"))),
        ];
        for (field, bad) in cases {
            let res = app.post_as(&verify_key, PATH, &json!({"events": [good.clone(), bad.clone()]})).await;
            let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
            assert!(body["error"]["message"].as_str().expect("message").contains(field), "{field}: {body}");
        }
        let twice = json!({"events": [good.clone(), good.clone()]});
        let body = expect_error(app.post_as(&verify_key, PATH, &twice).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(body["error"]["message"].as_str().expect("message").contains("twice"), "{body}");
        let empty = json!({"events": []});
        expect_error(app.post_as(&verify_key, PATH, &empty).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let too_many: Vec<Value> = (0..501).map(|n| json!({"event_id": format!("e{n:020}")})).collect();
        let res = app.post_as(&verify_key, PATH, &json!({"events": too_many})).await;
        assert!(res.status().is_client_error(), "{}", res.status());
        // 501 real events are over the body cap as well as the count.
        let many: Vec<Value> = (0..501).map(|n| event(&app, &key, n)).collect();
        let res = app.post_as(&verify_key, PATH, &json!({"events": many})).await;
        expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        let res = app.client.post(app.url(PATH)).bearer_auth(&verify_key).body("{").header("content-type", "application/json").send().await.expect("request");
        expect_error(res, StatusCode::BAD_REQUEST, "malformed_json").await;
        assert_eq!(calls_stored(&app).await, 0);
        assert_eq!(app.count("audit_events WHERE action = 'tool.call'").await, 0);
    }

    async fn only_a_verify_or_admin_key_may_deliver(app: TestApp) {
        let key = acme_key(&app).await;
        let batch = json!({"events": [event(&app, &key, 0)]});
        let res = app.client.post(app.url(PATH)).json(&batch).send().await.expect("request");
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let leaks = app.management_key_with(&app.tenant, Scope::revoke_leaked()).await;
        expect_error(app.post_as(&leaks, PATH, &batch).await, StatusCode::FORBIDDEN, "forbidden").await;
        // An ordinary (non-management) key of the tenant is no management key.
        let plain = app.create_key(&key.1, json!({"name": "plain"})).await;
        let plain = plain["key"].as_str().expect("key");
        expect_error(app.post_as(plain, PATH, &batch).await, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(calls_stored(&app).await, 0);
        expect_json(app.post(PATH, &batch).await, StatusCode::OK).await;
    }
}
