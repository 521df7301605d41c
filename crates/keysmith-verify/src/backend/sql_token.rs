//! Verifying an OAuth access token against the database: the same point
//! read as a key's (one indexed row, joined with its parent key, service
//! user and tenant), the same HMAC and constant-time compare, the same
//! fail-closed rules. The identity is the parent key's, narrowed to the
//! token's scopes, so limits, quota, audit and cache invalidation all work
//! by the parent key's id.

use time::OffsetDateTime;

use super::sql;
use crate::{
    allowlist::Capabilities,
    key::{
        pepper::Peppers,
        state::KeyState,
        token::{OAuthToken, TokenKind},
    },
    limit::KeyLimits,
    outcome::{Refusal, TokenGrant, VerifiedKey, VerifyCode},
    scope::{self, ScopeSet},
    timestamp,
};

/// The row a token's verification needs.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TokenRecord {
    id: String,
    kind: String,
    prefix: String,
    secret_hash: String,
    pepper_version: i64,
    resource: String,
    scopes: Option<String>,
    expires_at: i64,
    revoked_at: Option<i64>,
    key_id: String,
    key_status: String,
    key_expires_at: i64,
    key_cutoff_at: Option<i64>,
    allowed_tools: Option<String>,
    allowed_resources: Option<String>,
    allowed_prompts: Option<String>,
    limits: Option<String>,
    tenant_id: String,
    tenant_slug: String,
    tenant_disabled_at: Option<i64>,
    service_user_id: String,
    service_user_name: String,
    service_user_disabled_at: Option<i64>,
    grant_id: Option<String>,
    client_id: String,
}

pub(crate) const LOOKUP: &str = "SELECT o.id, o.kind, o.prefix, o.secret_hash, o.pepper_version, \
     o.resource, o.scopes, o.expires_at, o.revoked_at, k.id AS key_id, k.status AS key_status, \
     k.expires_at AS key_expires_at, k.cutoff_at AS key_cutoff_at, k.allowed_tools, \
     k.allowed_resources, k.allowed_prompts, k.limits, \
     t.id AS tenant_id, t.slug AS tenant_slug, t.disabled_at AS tenant_disabled_at, \
     s.id AS service_user_id, s.name AS service_user_name, s.disabled_at AS service_user_disabled_at, \
     o.grant_id, o.client_id \
     FROM oauth_tokens o JOIN api_keys k ON k.id = o.key_id AND k.tenant_id = o.tenant_id \
     JOIN tenants t ON t.id = o.tenant_id JOIN service_users s ON s.id = k.service_user_id \
     WHERE o.id = $1";

/// The lookup on a plain SQLite connection (see `crate::backend::sqlite`).
pub(crate) fn read_record(
    conn: &rusqlite::Connection,
    token_id: &str,
) -> rusqlite::Result<Option<TokenRecord>> {
    use rusqlite::OptionalExtension;
    let mut statement = conn.prepare_cached(LOOKUP)?;
    statement
        .query_row([token_id], |row| {
            Ok(TokenRecord {
                id: row.get(0)?,
                kind: row.get(1)?,
                prefix: row.get(2)?,
                secret_hash: row.get(3)?,
                pepper_version: row.get(4)?,
                resource: row.get(5)?,
                scopes: row.get(6)?,
                expires_at: row.get(7)?,
                revoked_at: row.get(8)?,
                key_id: row.get(9)?,
                key_status: row.get(10)?,
                key_expires_at: row.get(11)?,
                key_cutoff_at: row.get(12)?,
                allowed_tools: row.get(13)?,
                allowed_resources: row.get(14)?,
                allowed_prompts: row.get(15)?,
                limits: row.get(16)?,
                tenant_id: row.get(17)?,
                tenant_slug: row.get(18)?,
                tenant_disabled_at: row.get(19)?,
                service_user_id: row.get(20)?,
                service_user_name: row.get(21)?,
                service_user_disabled_at: row.get(22)?,
                grant_id: row.get(23)?,
                client_id: row.get(24)?,
            })
        })
        .optional()
}

/// The decision on a token, apart from I/O. The HMAC runs whether or not a
/// record was found.
pub(crate) fn judge(
    token: &OAuthToken,
    record: Option<&TokenRecord>,
    peppers: &Peppers,
    now: OffsetDateTime,
    tenant_id: Option<&str>,
    tool: Option<&str>,
) -> Result<VerifiedKey, Refusal> {
    let hash_matches = peppers.matches(
        record.map(|r| (r.secret_hash.as_str(), r.pepper_version)),
        token.secret(),
    );
    let record = match record {
        Some(r)
            if hash_matches
                && r.prefix == token.prefix()
                && r.kind == TokenKind::Access.as_str()
                && token.kind() == TokenKind::Access
                && tenant_id.is_none_or(|t| t == r.tenant_id) =>
        {
            r
        }
        _ => {
            return Err(Refusal {
                code: VerifyCode::NotFound,
                key_id: None,
                known: None,
            });
        }
    };
    let key_reach = Capabilities::from_storage(
        record.allowed_tools.as_deref(),
        record.allowed_resources.as_deref(),
        record.allowed_prompts.as_deref(),
    );
    let granted = record.scopes.as_deref().map(ScopeSet::from_storage);
    let allowed = match &granted {
        None => key_reach.clone(),
        Some(granted) => scope::narrow(&key_reach, granted),
    };
    let scope = granted
        .unwrap_or_else(|| ScopeSet::of_key(scope::key_reach(&key_reach)))
        .to_string();
    let key_until = timestamp::from_unix(
        record
            .key_cutoff_at
            .map_or(record.key_expires_at, |c| c.min(record.key_expires_at)),
    );
    let identity = VerifiedKey {
        key_id: record.key_id.clone(),
        tenant_id: record.tenant_id.clone(),
        tenant_slug: record.tenant_slug.clone(),
        service_user_id: record.service_user_id.clone(),
        service_user_name: record.service_user_name.clone(),
        valid_until: timestamp::from_unix(record.expires_at).min(key_until),
        // A token never carries the key's management scopes (`keysmith:*`).
        scopes: Vec::new(),
        allowed,
        limits: KeyLimits::from_storage(record.limits.as_deref()),
        token: Some(TokenGrant {
            token_id: record.id.clone(),
            resource: record.resource.clone(),
            scope,
            grant_id: record.grant_id.clone(),
            client_id: Some(record.client_id.clone()),
        }),
    };
    let now = timestamp::to_unix(now);
    let key_state = KeyState::at(
        &record.key_status,
        record.key_expires_at,
        record.key_cutoff_at,
        now,
    );
    let disabled = record.tenant_disabled_at.is_some() || record.service_user_disabled_at.is_some();
    let code = if record.revoked_at.is_some() {
        Some(VerifyCode::Revoked)
    } else if now >= record.expires_at {
        Some(VerifyCode::Expired)
    } else {
        sql::refusal_code(key_state, disabled, tool, &identity)
    };
    match code {
        None => Ok(identity),
        Some(code) => Err(Refusal {
            code,
            key_id: Some(record.key_id.clone()),
            known: Some(Box::new(identity)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        backend::sql::tests::{code, peppers},
        key::KeyPrefix,
    };

    fn record_for(token: &OAuthToken, peppers: &Peppers) -> TokenRecord {
        TokenRecord {
            id: token.token_id().to_owned(),
            kind: "access".into(),
            prefix: token.prefix().to_owned(),
            secret_hash: hex::encode(peppers.digest_current(token.secret())),
            pepper_version: 1,
            resource: "https://mcp.example.com/mcp".into(),
            scopes: Some(r#"["tools:files/read"]"#.into()),
            expires_at: 1_900_000_600,
            revoked_at: None,
            key_id: "parentkey".into(),
            key_status: "active".into(),
            key_expires_at: 2_000_000_000,
            key_cutoff_at: None,
            allowed_tools: Some(r#"["whoami","files/*"]"#.into()),
            allowed_resources: None,
            allowed_prompts: None,
            limits: None,
            tenant_id: "t1".into(),
            tenant_slug: "acme".into(),
            tenant_disabled_at: None,
            service_user_id: "su1".into(),
            service_user_name: "bot".into(),
            service_user_disabled_at: None,
            grant_id: Some("g1".into()),
            client_id: "kc_client".into(),
        }
    }

    #[test]
    fn decisions() {
        let peppers = peppers();
        let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
        let now = timestamp::from_unix(1_900_000_000);
        let run = |r: &TokenRecord, tenant: Option<&str>, tool: Option<&str>| {
            code(judge(&token, Some(r), &peppers, now, tenant, tool))
        };
        let good = record_for(&token, &peppers);
        let verified = judge(&token, Some(&good), &peppers, now, None, None).expect("valid");
        assert_eq!(verified.key_id, "parentkey");
        assert!(verified.scopes.is_empty());
        assert!(verified.allowed.tools().allows("files/read"));
        assert!(
            !verified.allowed.tools().allows("whoami"),
            "narrowed by scope"
        );
        assert_eq!(verified.valid_until, timestamp::from_unix(1_900_000_600));
        let grant = verified.token.as_ref().expect("a token");
        assert_eq!(grant.grant_id.as_deref(), Some("g1"), "named by its grant");
        assert_eq!(
            grant.client_id.as_deref(),
            Some("kc_client"),
            "and its client"
        );
        assert_eq!(run(&good, Some("t2"), None), VerifyCode::NotFound);
        assert_eq!(run(&good, None, Some("whoami")), VerifyCode::ToolNotAllowed);
        assert_eq!(
            code(judge(&token, None, &peppers, now, None, None)),
            VerifyCode::NotFound
        );
        let changed = |change: fn(&mut TokenRecord)| {
            let mut record = record_for(&token, &peppers);
            change(&mut record);
            run(&record, None, None)
        };
        assert_eq!(
            changed(|r| r.secret_hash = hex::encode([7u8; 32])),
            VerifyCode::NotFound
        );
        assert_eq!(changed(|r| r.kind = "refresh".into()), VerifyCode::NotFound);
        assert_eq!(changed(|r| r.revoked_at = Some(1)), VerifyCode::Revoked);
        assert_eq!(
            changed(|r| r.expires_at = 1_900_000_000),
            VerifyCode::Expired
        );
        assert_eq!(
            changed(|r| r.key_status = "revoked".into()),
            VerifyCode::Revoked
        );
        assert_eq!(
            changed(|r| {
                r.key_status = "rotating".into();
                r.key_cutoff_at = Some(1_900_000_000);
            }),
            VerifyCode::Revoked,
            "a rotated key past its cutoff"
        );
        assert_eq!(
            changed(|r| r.service_user_disabled_at = Some(1)),
            VerifyCode::Disabled
        );
        assert_eq!(
            changed(|r| r.tenant_disabled_at = Some(1)),
            VerifyCode::Disabled
        );
        assert_eq!(changed(|r| r.scopes = None), VerifyCode::Valid);
    }

    #[test]
    fn a_token_without_scopes_reaches_what_its_key_does() {
        let peppers = peppers();
        let token = OAuthToken::generate(&KeyPrefix::default(), TokenKind::Access);
        let record = TokenRecord {
            scopes: None,
            ..record_for(&token, &peppers)
        };
        let now = timestamp::from_unix(1_900_000_000);
        let verified = judge(&token, Some(&record), &peppers, now, None, None).expect("valid");
        assert!(verified.allowed.tools().allows("whoami"));
        assert_eq!(
            verified.token.expect("token").scope,
            "tools:whoami tools:files/*"
        );
    }
}
