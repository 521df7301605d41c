//! Owner emails, delivered: the mailer (SMTP or `.eml` files), the templates,
//! and the sender that drains the durable outbox with retries. What to send
//! and when is decided in the domain (`domain::events::outbox`, `domain::events::notice`,
//! `domain::events::reminders`); this module only reads the outbox and sends.
//! Exactly once per key, kind and threshold; a down SMTP server delays mail,
//! never loses it. No email ever carries a secret.

pub mod mailer;
pub mod render;
pub mod sender;
pub mod webhooks;
