//! `RedisSessions` against the real Redis at 127.0.0.1:6379: two instances
//! (each its own connection and cache) see one set of bindings.

use std::sync::Arc;

use super::*;

fn owner(key_id: &str) -> SessionOwner {
    SessionOwner {
        key_id: key_id.into(),
        tenant_id: "t1".into(),
    }
}

/// An instance on its own connection, under `prefix` (one per test).
fn instance(prefix: &str) -> Sessions {
    let store = RedisSessions::connect("redis://127.0.0.1:6379")
        .expect("redis url")
        .prefix(prefix);
    Sessions::new(Arc::new(store), Duration::from_secs(3600))
}

fn fresh_prefix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random");
    format!("keysmith-test:{}", hex::encode(bytes))
}

#[tokio::test]
async fn bindings_are_shared_by_instances_until_they_end_or_age_out() {
    let prefix = fresh_prefix();
    let (here, there) = (instance(&prefix), instance(&prefix));
    let id = SessionHash::of(b"session-1");
    assert_eq!(there.owner(id, 100).await.expect("redis"), None);
    assert_eq!(
        here.bind(id, &owner("b"), 100).await.expect("redis"),
        Some(owner("b"))
    );
    assert_eq!(
        there.bind(id, &owner("a"), 101).await.expect("redis"),
        Some(owner("b")),
        "issued twice: the first binding holds, on every instance"
    );
    assert_eq!(there.owner(id, 102).await.expect("redis"), Some(owner("b")));
    // Used through `here` past the refresh interval: still there an hour
    // after it was bound.
    assert_eq!(
        here.owner(id, 100 + 1800).await.expect("redis"),
        Some(owner("b"))
    );
    assert_eq!(
        there.owner(id, 100 + 3601).await.expect("redis"),
        Some(owner("b"))
    );
    let idle = SessionHash::of(b"idle");
    here.bind(idle, &owner("b"), 0).await.expect("redis");
    assert_eq!(
        there.owner(idle, 3601).await.expect("redis"),
        None,
        "aged out"
    );
    assert_eq!(
        there.bind(idle, &owner("c"), 3601).await.expect("redis"),
        Some(owner("c")),
        "an aged-out id is free again"
    );
    here.end(id).await.expect("redis");
    assert_eq!(here.owner(id, 3700).await.expect("redis"), None, "ended");
    // `there` had it cached (it lets the owner through to an upstream that
    // answers 404 until it ages out); an instance that never saw it does not.
    assert_eq!(
        instance(&prefix).owner(id, 3700).await.expect("redis"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_binds_on_several_instances_agree_on_one_owner() {
    let prefix = fresh_prefix();
    let id = SessionHash::of(b"raced");
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let sessions = instance(&prefix);
            tokio::spawn(async move {
                sessions
                    .bind(id, &owner(&format!("k{n}")), 0)
                    .await
                    .expect("redis")
            })
        })
        .collect();
    let mut owners = Vec::new();
    for task in tasks {
        owners.push(task.await.expect("task"));
    }
    assert!(
        owners.iter().all(|o| o == &owners[0] && o.is_some()),
        "{owners:?}"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_never_a_pass() {
    let store = RedisSessions::connect("redis://127.0.0.1:1").expect("url");
    let sessions = Sessions::new(Arc::new(store), Duration::from_secs(3600));
    let id = SessionHash::of(b"s");
    assert!(sessions.owner(id, 0).await.is_err());
    assert!(sessions.bind(id, &owner("a"), 0).await.is_err());
}
