//! What leaves the server and when: the outbox of owner emails and what they
//! say (notices, expiry reminders, anomaly alerts), webhooks and their
//! deliveries, and the lease queue both drain through.

pub mod anomalies;
pub mod notice;
pub mod outbox;
pub mod queue;
pub mod reminders;
pub mod webhooks;
