//! Per-tenant caps: a burst of creations at the cap lets exactly the room
//! left through, refuses the rest with a clear 422, and another tenant is
//! not affected.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// The app again on the same database, with `name` set to `cap`.
async fn capped(app: TestApp, name: &str, cap: i64) -> TestApp {
    let clock = app.clock.clone();
    let db = app.stop().await;
    TestApp::spawn_with(db, &[(name, cap.to_string())], Some(clock)).await
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(&app.tenant.id)
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

/// POSTs `bodies` to `path` all at once; the statuses and answers.
async fn burst(app: &TestApp, path: &str, bodies: Vec<Value>) -> Vec<(StatusCode, Value)> {
    let mut set = JoinSet::new();
    for body in bodies {
        let request = app
            .client
            .post(app.url(path))
            .bearer_auth(&app.admin_key)
            .json(&body);
        set.spawn(async move {
            let res = request.send().await.expect("post");
            (res.status(), res.json().await.expect("json"))
        });
    }
    set.join_all().await
}

fn tally(answers: &[(StatusCode, Value)], refusal: &str) -> (usize, usize) {
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|(s, body)| {
            *s == StatusCode::UNPROCESSABLE_ENTITY
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(refusal))
        })
        .count();
    (created, refused)
}

const SERVICE_USERS: &str = "SELECT COUNT(*) FROM service_users WHERE tenant_id = $1";
const WORKING_KEYS: &str =
    "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND status IN ('active', 'rotating')";

both_engines! {
    async fn a_burst_of_service_users_stops_at_the_cap(app: TestApp) {
        let app = capped(app, "KEYSMITH_MAX_SERVICE_USERS_PER_TENANT", 3).await;
        let room = 3 - scalar(&app, SERVICE_USERS).await;
        assert!(room > 0, "the management service user leaves room");
        let bodies = (0..10).map(|n| json!({"name": format!("bot-{n}"), "owner_email": "a@acme.test"})).collect();
        let answers = burst(&app, "/api/v1/tenants/acme/service-users", bodies).await;
        let (created, refused) = tally(&answers, "at most 3 service users (KEYSMITH_MAX_SERVICE_USERS_PER_TENANT)");
        assert_eq!((created, refused), (usize::try_from(room).expect("room"), 10 - usize::try_from(room).expect("room")), "{answers:?}");
        assert_eq!(scalar(&app, SERVICE_USERS).await, 3, "never past the cap");

        // Another tenant has its own room.
        let globex = app.create_tenant("globex").await;
        let key = app.management_key(&globex).await;
        let res = app.post_as(&key, "/api/v1/tenants/globex/service-users", &json!({"name": "bot-0", "owner_email": "a@globex.test"})).await;
        expect_json(res, StatusCode::CREATED).await;
    }

    async fn a_burst_of_keys_stops_at_the_cap_and_a_revocation_makes_room(app: TestApp) {
        let app = capped(app, "KEYSMITH_MAX_KEYS_PER_TENANT", 5).await;
        let su = app.create_service_user("ci-bot").await;
        let room = 5 - scalar(&app, WORKING_KEYS).await;
        assert!(room > 0, "the management keys leave room");
        let bodies = (0..10).map(|n| json!({"service_user_id": su, "name": format!("k{n}")})).collect();
        let answers = burst(&app, "/api/v1/tenants/acme/keys", bodies).await;
        let (created, refused) = tally(&answers, "at most 5 working keys (KEYSMITH_MAX_KEYS_PER_TENANT)");
        assert_eq!((created, refused), (usize::try_from(room).expect("room"), 10 - usize::try_from(room).expect("room")), "{answers:?}");
        assert_eq!(scalar(&app, WORKING_KEYS).await, 5, "never past the cap");

        // Rotating adds a working key too, so at the cap it is refused and
        // the key stays as it was.
        let id = answers.iter().find(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b["id"].as_str().expect("id").to_owned()).expect("a key");
        expect_error(app.rotate_key(&id).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let key = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await, StatusCode::OK).await;
        assert_eq!(key["status"], "active");

        // Revoked keys do not count: revoking one makes room for one.
        expect_json(app.revoke_key(&id, "make room").await, StatusCode::OK).await;
        expect_json(app.post("/api/v1/tenants/acme/keys", &json!({"service_user_id": su, "name": "again"})).await, StatusCode::CREATED).await;
        expect_error(app.post("/api/v1/tenants/acme/keys", &json!({"service_user_id": su, "name": "one more"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}
