//! Owner emails: a durable outbox filled in the same transaction as the cause
//! (rotation) or by the scheduler (expiry reminders), and a sender that
//! delivers it with retries. Exactly once per key, kind and threshold; a down
//! SMTP server delays mail, never loses it. No email ever carries a secret.

pub mod mailer;
pub mod notice;
pub mod outbox;
pub mod reminders;
pub mod render;
pub mod sender;
