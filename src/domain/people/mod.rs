//! Admin accounts, the people who sign in to the admin UI: the account and its
//! roles per tenant, its password, lifecycle (disable, sessions, password
//! changes), TOTP, the sign-in throttle, first-run setup, invitations into a
//! tenant, and the single-use tokens of its forms.

pub mod accounts;
pub mod form_tokens;
pub mod invitations;
pub mod lifecycle;
pub mod passwords;
pub mod setup;
pub mod sign_in_throttle;
pub mod totp;
