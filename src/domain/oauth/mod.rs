//! OAuth 2.1: Keysmith as the authorization server of the MCP servers it
//! protects, one issuer per tenant. `tokens` issues, revokes and purges
//! access tokens; every token hangs on a parent key (see the migration
//! `0100_oauth_tokens.sql` and `keysmith_verify::key::token`).

pub mod tokens;

use time::Duration;

/// How long an access token lives (the contract's default; a tenant policy
/// between [`MIN_ACCESS_TOKEN_LIFETIME`] and [`MAX_ACCESS_TOKEN_LIFETIME`]
/// comes with the authorization-code slice).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::minutes(10);
pub const MIN_ACCESS_TOKEN_LIFETIME: Duration = Duration::minutes(5);
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(24);

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
