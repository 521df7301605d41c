//! One tenant's burst of management-API requests cannot take every database
//! connection: another tenant's request still gets one.
//!
//! PostgreSQL only: it is where a request can be made to hold its connection
//! (waiting on a table lock) for as long as the test needs, and where the
//! pool is shared by instances; SQLite readers never wait on a lock (WAL).

use std::time::Duration;

use reqwest::StatusCode;
use sqlx::{Connection, Executor, PgConnection};
use tokio::task::JoinSet;

use crate::helpers::{Engine, TestApp, expect_json};

/// acme's requests now waiting on the locked table, each holding a connection.
async fn waiting(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = 'tenant_invitations'::regclass",
    )
    .fetch_one(conn)
    .await
    .expect("pg_locks")
}

#[tokio::test]
async fn a_tenants_burst_leaves_connections_for_another_tenant() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let globex = app.create_tenant("globex").await;
    let globex_key = app.management_key(&globex).await;

    // Every acme listing of invitations blocks, connection in hand, until
    // this transaction ends.
    let mut locker = PgConnection::connect(&app.db.url).await.expect("connect");
    locker.execute("BEGIN").await.expect("begin");
    locker
        .execute("LOCK TABLE tenant_invitations IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let mut burst = JoinSet::new();
    for _ in 0..30 {
        let request = app
            .client
            .get(app.url("/api/v1/tenants/acme/invitations"))
            .bearer_auth(&app.admin_key);
        burst.spawn(async move {
            let res = request.send().await.expect("get");
            (res.status(), res.headers().get("retry-after").cloned())
        });
    }
    let mut watcher = PgConnection::connect(&app.db.url).await.expect("connect");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while waiting(&mut watcher).await < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acme's requests never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let res = app.get_as(&globex_key, "/api/v1/tenants/globex/keys").await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(
        waiting(&mut watcher).await,
        4,
        "acme holds at most its 4 turns' connections"
    );

    locker.execute("ROLLBACK").await.expect("unlock");
    for (status, retry_after) in burst.join_all().await {
        match status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => assert_eq!(
                retry_after.as_ref().and_then(|v| v.to_str().ok()),
                Some("1")
            ),
            other => panic!("acme's own requests are served or told to retry, never {other}"),
        }
    }
}
