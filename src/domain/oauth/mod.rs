//! OAuth 2.1: Keysmith as the authorization server of the MCP servers it
//! protects, one issuer per tenant. `tokens` issues, revokes and purges
//! access tokens; every token hangs on a parent key (see the migration
//! `0100_oauth_tokens.sql` and `keysmith_verify::key::token`). The
//! authorization-code flow: `grants` (a person's approval, with its own
//! parent key), `pending` (a grant goes live only once its code is
//! redeemed), `codes` (single-use, PKCE-bound), `exchange` (token pairs,
//! refresh rotation and reuse detection), `pkce`.

pub mod clients;
pub mod codes;
pub mod exchange;
pub mod grants;
pub mod pending;
pub mod pkce;
pub mod tokens;

use time::Duration;

/// How long an access token lives: the tenant's policy
/// (`oauth_access_token_minutes`, 5 minutes to 24 hours, default 10).
pub fn access_token_lifetime(tenant: &crate::domain::tenancy::tenants::Tenant) -> Duration {
    Duration::minutes(tenant.oauth_access_token_minutes)
}

/// Live (unexpired, unrevoked) access tokens one key may hold at once: a
/// client that asks for a token per call instead of reusing it is refused
/// before it fills the table.
pub const MAX_LIVE_TOKENS_PER_KEY: i64 = 100;

/// The scopes every issuer and protected resource announces.
pub const SCOPES_SUPPORTED: [&str; 3] = ["tools:*", "resources:*", "prompts:*"];

/// The issuer of `tenant`: `{KEYSMITH_PUBLIC_URL}/oauth/{tenant}`.
pub fn issuer(public_url: &str, tenant_slug: &str) -> String {
    format!("{public_url}/oauth/{tenant_slug}")
}
