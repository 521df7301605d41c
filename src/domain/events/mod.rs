//! What leaves the server and when: the outbox of owner emails and what they
//! say (notices, expiry reminders, anomaly alerts), webhooks and their
//! deliveries, and the lease queue both drain through. The rooms that cause
//! events (`keys`, `tenancy`, `oauth`) call this one and hand it the few
//! fields it needs; it imports none of them.

pub mod anomalies;
pub mod notice;
pub mod outbox;
pub mod queue;
pub mod reminders;
pub mod webhooks;
