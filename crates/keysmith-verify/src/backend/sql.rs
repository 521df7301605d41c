//! Verification straight from the Keysmith database (SQLite or PostgreSQL).

use std::sync::Arc;

use time::OffsetDateTime;

use super::{
    BackendError, VerdictFuture, Verifier, sql_token,
    sqlite::{self, Readers},
};
use crate::{
    allowlist::Capabilities,
    clock::SharedClock,
    key::{
        ApiKey,
        pepper::Peppers,
        state::KeyState,
        token::{Credential, OAuthToken},
    },
    limit::KeyLimits,
    outcome::{Refusal, VerifiedKey, VerifyCode},
    timestamp,
};

/// The row a verification needs: the key joined with its service user and tenant.
#[derive(Debug, sqlx::FromRow)]
struct KeyRecord {
    id: String,
    prefix: String,
    secret_hash: String,
    pepper_version: i64,
    status: String,
    expires_at: i64,
    cutoff_at: Option<i64>,
    allowed_tools: Option<String>,
    allowed_resources: Option<String>,
    allowed_prompts: Option<String>,
    limits: Option<String>,
    scopes: String,
    tenant_id: String,
    tenant_slug: String,
    tenant_disabled_at: Option<i64>,
    service_user_id: String,
    service_user_name: String,
    service_user_disabled_at: Option<i64>,
}

const LOOKUP: &str = "SELECT k.id, k.prefix, k.secret_hash, k.pepper_version, k.status, k.expires_at, \
     k.cutoff_at, k.allowed_tools, k.allowed_resources, k.allowed_prompts, k.limits, k.scopes, t.id AS tenant_id, t.slug AS tenant_slug, \
     t.disabled_at AS tenant_disabled_at, s.id AS service_user_id, s.name AS service_user_name, \
     s.disabled_at AS service_user_disabled_at \
     FROM api_keys k JOIN tenants t ON t.id = k.tenant_id JOIN service_users s ON s.id = k.service_user_id \
     WHERE k.id = $1";

/// Verifies keys against the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlVerifier {
    pool: sqlx::AnyPool,
    /// On a SQLite file: the point read without sqlx's worker-thread hop.
    readers: Option<Arc<Readers>>,
    peppers: Arc<Peppers>,
    clock: SharedClock,
    /// Set for a service that belongs to one tenant: other tenants' keys are `not_found`.
    tenant_id: Option<String>,
}

impl SqlVerifier {
    pub fn new(pool: sqlx::AnyPool, peppers: Arc<Peppers>, clock: SharedClock) -> Self {
        let readers = sqlite::database_file(&pool).map(|file| Arc::new(Readers::new(file)));
        Self {
            pool,
            readers,
            peppers,
            clock,
            tenant_id: None,
        }
    }

    /// Accepts only keys of `tenant_id` (as the [`crate::Verifier`] trait's verdicts).
    pub fn scoped_to_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    pub(crate) fn tenant_scope(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// Reads through sqlx only, as on PostgreSQL (to compare the two paths).
    pub fn without_direct_reads(mut self) -> Self {
        self.readers = None;
        self
    }

    /// Whether SQLite is read directly rather than through sqlx.
    pub fn reads_directly(&self) -> bool {
        self.readers.is_some()
    }

    /// Verifies `presented` (the raw string a client sent). `tenant_id`, when
    /// given, scopes the lookup: another tenant's key is `not_found`. `tool`,
    /// when given, must be in the key's allowlist.
    #[tracing::instrument(skip_all, fields(key_id))]
    pub async fn verify(
        &self,
        presented: &str,
        tenant_id: Option<&str>,
        tool: Option<&str>,
    ) -> Result<Result<VerifiedKey, Refusal>, BackendError> {
        let key = match Credential::parse(presented) {
            Ok(Credential::Key(key)) => key,
            Ok(Credential::Token(token)) => {
                return self.verify_token(&token, tenant_id, tool).await;
            }
            Err(_) => {
                return Ok(Err(Refusal {
                    code: VerifyCode::Malformed,
                    key_id: None,
                    known: None,
                }));
            }
        };
        tracing::Span::current().record("key_id", key.key_id());
        let record = match &self.readers {
            // A closed pool means the database is gone for this process: fail closed as sqlx would.
            Some(_) if self.pool.is_closed() => return Err(sqlx::Error::PoolClosed.into()),
            Some(readers) => readers.read(read_record, key.key_id()).await?,
            None => {
                sqlx::query_as::<_, KeyRecord>(LOOKUP)
                    .bind(key.key_id())
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(judge(
            &key,
            record.as_ref(),
            &self.peppers,
            self.clock.now(),
            tenant_id,
            tool,
        ))
    }
}

impl SqlVerifier {
    /// [`SqlVerifier::verify`] for an OAuth access token (see [`crate::backend::sql_token`]).
    #[tracing::instrument(skip_all, fields(token_id = token.token_id()))]
    async fn verify_token(
        &self,
        token: &OAuthToken,
        tenant_id: Option<&str>,
        tool: Option<&str>,
    ) -> Result<Result<VerifiedKey, Refusal>, BackendError> {
        let record = match &self.readers {
            Some(_) if self.pool.is_closed() => return Err(sqlx::Error::PoolClosed.into()),
            Some(readers) => {
                readers
                    .read(sql_token::read_record, token.token_id())
                    .await?
            }
            None => {
                sqlx::query_as::<_, sql_token::TokenRecord>(sql_token::LOOKUP)
                    .bind(token.token_id())
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(sql_token::judge(
            token,
            record.as_ref(),
            &self.peppers,
            self.clock.now(),
            tenant_id,
            tool,
        ))
    }
}

impl Verifier for SqlVerifier {
    fn verify<'a>(&'a self, presented: &'a str) -> VerdictFuture<'a> {
        Box::pin(SqlVerifier::verify(
            self,
            presented,
            self.tenant_scope(),
            None,
        ))
    }
}

/// The lookup on a plain SQLite connection, its statement prepared once per connection.
fn read_record(conn: &rusqlite::Connection, key_id: &str) -> rusqlite::Result<Option<KeyRecord>> {
    use rusqlite::OptionalExtension;
    let mut statement = conn.prepare_cached(LOOKUP)?;
    statement
        .query_row([key_id], |row| {
            Ok(KeyRecord {
                id: row.get(0)?,
                prefix: row.get(1)?,
                secret_hash: row.get(2)?,
                pepper_version: row.get(3)?,
                status: row.get(4)?,
                expires_at: row.get(5)?,
                cutoff_at: row.get(6)?,
                allowed_tools: row.get(7)?,
                allowed_resources: row.get(8)?,
                allowed_prompts: row.get(9)?,
                limits: row.get(10)?,
                scopes: row.get(11)?,
                tenant_id: row.get(12)?,
                tenant_slug: row.get(13)?,
                tenant_disabled_at: row.get(14)?,
                service_user_id: row.get(15)?,
                service_user_name: row.get(16)?,
                service_user_disabled_at: row.get(17)?,
            })
        })
        .optional()
}

/// The decision, separated from I/O so it can be benchmarked and tested alone.
/// The HMAC runs whether or not a record was found, so an unknown key id costs
/// the same as a wrong secret.
fn judge(
    key: &ApiKey,
    record: Option<&KeyRecord>,
    peppers: &Peppers,
    now: OffsetDateTime,
    tenant_id: Option<&str>,
    tool: Option<&str>,
) -> Result<VerifiedKey, Refusal> {
    let refuse = |code, known: Option<VerifiedKey>| Refusal {
        code,
        key_id: Some(key.key_id().to_owned()),
        known: known.map(Box::new),
    };
    let hash_matches = peppers.matches(
        record.map(|r| (r.secret_hash.as_str(), r.pepper_version)),
        key.secret(),
    );
    let record = match record {
        Some(r)
            if hash_matches
                && r.prefix == key.prefix()
                && tenant_id.is_none_or(|t| t == r.tenant_id) =>
        {
            r
        }
        _ => return Err(refuse(VerifyCode::NotFound, None)),
    };
    let expires_at = timestamp::from_unix(record.expires_at);
    let cutoff_at = record.cutoff_at.map(timestamp::from_unix);
    let identity = VerifiedKey {
        key_id: record.id.clone(),
        tenant_id: record.tenant_id.clone(),
        tenant_slug: record.tenant_slug.clone(),
        service_user_id: record.service_user_id.clone(),
        service_user_name: record.service_user_name.clone(),
        valid_until: cutoff_at.map_or(expires_at, |c| c.min(expires_at)),
        scopes: serde_json::from_str(&record.scopes).unwrap_or_default(),
        allowed: Capabilities::from_storage(
            record.allowed_tools.as_deref(),
            record.allowed_resources.as_deref(),
            record.allowed_prompts.as_deref(),
        ),
        limits: KeyLimits::from_storage(record.limits.as_deref()),
        token: None,
    };
    let state = KeyState::at(
        &record.status,
        record.expires_at,
        record.cutoff_at,
        timestamp::to_unix(now),
    );
    let disabled = record.tenant_disabled_at.is_some() || record.service_user_disabled_at.is_some();
    match refusal_code(state, disabled, tool, &identity) {
        None => Ok(identity),
        Some(code) => Err(refuse(code, Some(identity))),
    }
}

/// Why a genuine key (or its token) may not be used: its state first, then
/// a disabled service user or tenant, then the tool asked for.
pub(crate) fn refusal_code(
    state: KeyState,
    disabled: bool,
    tool: Option<&str>,
    identity: &VerifiedKey,
) -> Option<VerifyCode> {
    match state {
        KeyState::Active | KeyState::Rotating => None,
        KeyState::Expired => Some(VerifyCode::Expired),
        KeyState::Revoked => Some(VerifyCode::Revoked),
    }
    .or_else(|| disabled.then_some(VerifyCode::Disabled))
    .or_else(|| {
        tool.filter(|t| !identity.allowed.tools().allows(t))
            .map(|_| VerifyCode::ToolNotAllowed)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::key::KeyPrefix;
    use time::Duration;

    pub(crate) fn peppers() -> Peppers {
        Peppers::parse(&format!("1 {}", "42".repeat(32))).expect("valid")
    }

    fn record_for(key: &ApiKey, peppers: &Peppers) -> KeyRecord {
        KeyRecord {
            id: key.key_id().to_owned(),
            prefix: key.prefix().to_owned(),
            secret_hash: hex::encode(peppers.digest_current(key.secret())),
            pepper_version: 1,
            status: "active".into(),
            expires_at: 2_000_000_000,
            cutoff_at: None,
            allowed_tools: Some(r#"["whoami"]"#.into()),
            allowed_resources: None,
            allowed_prompts: None,
            limits: None,
            scopes: "[]".into(),
            tenant_id: "t1".into(),
            tenant_slug: "acme".into(),
            tenant_disabled_at: None,
            service_user_id: "su1".into(),
            service_user_name: "bot".into(),
            service_user_disabled_at: None,
        }
    }

    pub(crate) fn code(result: Result<VerifiedKey, Refusal>) -> VerifyCode {
        result.map_or_else(|r| r.code, |_| VerifyCode::Valid)
    }

    #[test]
    fn decisions() {
        let peppers = peppers();
        let key = ApiKey::generate(&KeyPrefix::default());
        let now = timestamp::from_unix(1_900_000_000);
        let good = record_for(&key, &peppers);
        let run = |r: &KeyRecord, tenant: Option<&str>, tool: Option<&str>| {
            code(judge(&key, Some(r), &peppers, now, tenant, tool))
        };
        assert_eq!(run(&good, None, None), VerifyCode::Valid);
        assert_eq!(run(&good, Some("t1"), Some("whoami")), VerifyCode::Valid);
        assert_eq!(run(&good, Some("t2"), None), VerifyCode::NotFound);
        assert_eq!(run(&good, None, Some("echo")), VerifyCode::ToolNotAllowed);
        // A row that names only tools (as every limited key did before
        // resources and prompts had lists) reaches no resource or prompt.
        let identity = judge(&key, Some(&good), &peppers, now, None, None).expect("valid");
        assert!(identity.allowed.tools().allows("whoami"));
        assert!(!identity.allowed.resources().allows("test://static-text"));
        assert!(!identity.allowed.prompts().allows("greet"));
        assert_eq!(
            code(judge(&key, None, &peppers, now, None, None)),
            VerifyCode::NotFound
        );

        let wrong_hash = KeyRecord {
            secret_hash: hex::encode([7u8; 32]),
            ..record_for(&key, &peppers)
        };
        assert_eq!(run(&wrong_hash, None, None), VerifyCode::NotFound);
        let revoked = KeyRecord {
            status: "revoked".into(),
            ..record_for(&key, &peppers)
        };
        assert_eq!(run(&revoked, None, None), VerifyCode::Revoked);
        let expired = KeyRecord {
            expires_at: 1_900_000_000,
            ..record_for(&key, &peppers)
        };
        assert_eq!(run(&expired, None, None), VerifyCode::Expired);
        let disabled = KeyRecord {
            service_user_disabled_at: Some(1),
            ..record_for(&key, &peppers)
        };
        assert_eq!(run(&disabled, None, None), VerifyCode::Disabled);

        let cutoff = now.unix_timestamp();
        let rotating = KeyRecord {
            status: "rotating".into(),
            cutoff_at: Some(cutoff),
            ..record_for(&key, &peppers)
        };
        let at = |t: OffsetDateTime| code(judge(&key, Some(&rotating), &peppers, t, None, None));
        assert_eq!(at(now - Duration::seconds(1)), VerifyCode::Valid);
        assert_eq!(at(now + Duration::seconds(1)), VerifyCode::Revoked);
    }
}
