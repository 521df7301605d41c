//! At most so many management-API requests of one tenant at once, so one
//! tenant's burst cannot hold every database connection while another
//! tenant's requests (and the scheduler) wait for one and fail.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Beyond this many tenants remembered, idle ones are forgotten.
const REMEMBERED: usize = 1_024;

/// One semaphore per tenant id, made on first use.
#[derive(Debug, Clone)]
pub struct TenantGate {
    per_tenant: usize,
    /// How long a request waits for its turn before it is refused.
    wait: Duration,
    open: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl TenantGate {
    pub fn new(per_tenant: usize, wait: Duration) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            wait,
            open: Arc::default(),
        }
    }

    /// A turn for `tenant_id`, held until dropped; `None` when the tenant's
    /// turns stayed taken for the whole wait.
    pub async fn enter(&self, tenant_id: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.semaphore(tenant_id);
        tokio::time::timeout(self.wait, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }

    fn semaphore(&self, tenant_id: &str) -> Arc<Semaphore> {
        // A poisoned map only means another request panicked while holding
        // it; the map itself is still whole.
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.len() >= REMEMBERED && !open.contains_key(tenant_id) {
            // Only this map holds an idle tenant's semaphore: no permit is out.
            open.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
        }
        open.entry(tenant_id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_waits_for_its_own_turns_only() {
        let gate = TenantGate::new(2, Duration::from_millis(20));
        let first = gate.enter("acme").await.expect("a turn");
        let _second = gate.enter("acme").await.expect("a turn");
        assert!(gate.enter("acme").await.is_none(), "acme's turns are taken");
        assert!(gate.enter("globex").await.is_some(), "globex has its own");
        drop(first);
        assert!(
            gate.enter("acme").await.is_some(),
            "a turn given back is taken again"
        );
    }

    #[tokio::test]
    async fn idle_tenants_are_forgotten_past_the_limit() {
        let gate = TenantGate::new(1, Duration::from_millis(20));
        let held = gate.enter("busy").await.expect("a turn");
        for n in 0..REMEMBERED {
            drop(gate.enter(&format!("t{n}")).await);
        }
        let open = gate.open.lock().expect("map").len();
        assert!(open <= REMEMBERED, "{open}");
        assert!(
            gate.enter("busy").await.is_none(),
            "a tenant with turns out is kept"
        );
        drop(held);
    }
}
