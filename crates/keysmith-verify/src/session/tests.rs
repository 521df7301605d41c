use std::sync::Arc;

use super::*;

fn owner(key_id: &str) -> SessionOwner {
    SessionOwner {
        key_id: key_id.into(),
        tenant_id: "t1".into(),
    }
}

fn sessions(store: Arc<InMemorySessions>) -> Sessions {
    Sessions::new(store, Duration::from_secs(3600))
}

#[tokio::test]
async fn a_session_is_its_first_owners_until_it_ends() {
    let store = Arc::new(InMemorySessions::new());
    let sessions = sessions(store);
    let id = SessionHash::of(b"session-1");
    assert_eq!(
        sessions.owner(id, 100).await.expect("store"),
        None,
        "never issued"
    );
    assert_eq!(
        sessions.bind(id, &owner("b"), 100).await.expect("store"),
        Some(owner("b"))
    );
    assert_eq!(
        sessions.bind(id, &owner("a"), 101).await.expect("store"),
        Some(owner("b")),
        "issued twice: the first binding holds"
    );
    assert_eq!(
        sessions.owner(id, 102).await.expect("store"),
        Some(owner("b"))
    );
    sessions.end(id).await.expect("store");
    assert_eq!(sessions.owner(id, 103).await.expect("store"), None, "ended");
}

#[tokio::test]
async fn a_binding_ages_out_unless_used() {
    let store = Arc::new(InMemorySessions::new());
    // Two instances over one store: each has its own cache.
    let (here, there) = (sessions(store.clone()), sessions(store));
    let (used, idle) = (SessionHash::of(b"used"), SessionHash::of(b"idle"));
    here.bind(used, &owner("b"), 0).await.expect("store");
    here.bind(idle, &owner("b"), 0).await.expect("store");
    // Used through `here` every half hour: refreshed in the store, so
    // `there` still finds it after the idle time.
    for now in (1800..=7200).step_by(1800) {
        assert_eq!(
            here.owner(used, now).await.expect("store"),
            Some(owner("b"))
        );
    }
    assert_eq!(
        there.owner(used, 7200).await.expect("store"),
        Some(owner("b"))
    );
    assert_eq!(
        here.owner(idle, 3601).await.expect("store"),
        None,
        "cached, but idle too long"
    );
    assert_eq!(there.owner(idle, 3601).await.expect("store"), None);
}

#[test]
fn racing_binds_of_one_session_agree_on_one_owner() {
    let store = Arc::new(InMemorySessions::new());
    let id = SessionHash::of(b"raced");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("runtime");
    let owners = runtime.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let sessions = sessions(store.clone());
                tokio::spawn(async move {
                    sessions
                        .bind(id, &owner(&format!("k{n}")), 0)
                        .await
                        .expect("store")
                })
            })
            .collect();
        let mut owners = Vec::new();
        for task in tasks {
            owners.push(task.await.expect("task"));
        }
        owners
    });
    assert!(
        owners.iter().all(|o| o == &owners[0] && o.is_some()),
        "{owners:?}"
    );
}
