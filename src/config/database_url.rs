//! `KEYSMITH_DATABASE_URL`: which engine it names, and a `Debug`/`Display`
//! that never show its password or a secret query parameter.

use std::fmt;

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database URL whose `Debug`/`Display` hide the password.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    engine: Engine,
    /// Query parameters dropped because the driver does not read them.
    ignored: Vec<String>,
}

/// The query parameters sqlx's PostgreSQL driver reads. It logs any other
/// *with its value* (`sslpassword=…` included), so the others are dropped
/// before it sees the URL, and only their names are reported.
const POSTGRES_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// `url` without the query parameters the driver would ignore (and log),
/// and their names; unchanged when there are none or it does not parse.
fn without_unread_params(url: &str) -> (String, Vec<String>) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_owned(), Vec::new());
    };
    type Pairs = Vec<(String, String)>;
    let (kept, ignored): (Pairs, Pairs) = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .partition(|(k, _)| POSTGRES_PARAMS.contains(&k.as_str()));
    if ignored.is_empty() {
        return (url.to_owned(), Vec::new());
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    (parsed.into(), ignored.into_iter().map(|(k, _)| k).collect())
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            anyhow::bail!("expected a sqlite:// or postgres:// URL");
        };
        let (url, ignored) = match engine {
            Engine::Postgres => without_unread_params(url),
            Engine::Sqlite => (url.to_owned(), Vec::new()),
        };
        Ok(Self {
            url,
            engine,
            ignored,
        })
    }

    /// Names of query parameters dropped because the driver does not read them.
    pub fn ignored_params(&self) -> &[String] {
        &self.ignored
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with its password, and any query parameter that may hold a
    /// secret (`password`, `sslpassword`, …), replaced by `***`. Parsed as a
    /// URL, not split by hand: a password may contain `@`, `:` or `/`.
    pub fn redacted(&self) -> String {
        if self.engine == Engine::Sqlite {
            return self.url.clone();
        }
        // Never echo what we could not take apart: it may be all secret. An
        // `@` in the path means an unencoded password was cut short at a `/`
        // (`user:p@ss/word@host`), leaving its tail in the path.
        let hidden = || "postgres://[unparseable URL hidden]".to_owned();
        let Ok(mut parsed) = url::Url::parse(&self.url) else {
            return hidden();
        };
        if parsed.path().contains('@') || parsed.fragment().is_some() {
            return hidden();
        }
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        if parsed.query().is_some() {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    let secret = ["pass", "secret", "token"]
                        .iter()
                        .any(|s| lower.contains(s));
                    let value = if secret {
                        "***".into()
                    } else {
                        value.into_owned()
                    };
                    (key.into_owned(), value)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        parsed.to_string()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_parses_the_url_query_and_awkward_passwords_included() {
        for (raw, hidden, shown) in [
            (
                "postgres://app@db/k?password=hunter2&sslmode=require",
                "hunter2",
                "postgres://app@db/k?password=***&sslmode=require",
            ),
            (
                "postgres://app:p@ss:w0rd@db:5432/k",
                "ss:w0rd",
                "postgres://app:***@db:5432/k",
            ),
            (
                "postgres://app:p@ss/w0rd@db/k",
                "w0rd",
                "[unparseable URL hidden]",
            ),
            (
                "postgresql://app:h%40nter2@db/k?password=s3cret&sslmode=require",
                "s3cret",
                "postgresql://app:***@db/k?password=***&sslmode=require",
            ),
            (
                "postgres://app:hunter2@[::1:5432/k",
                "hunter2",
                "[unparseable URL hidden]",
            ),
        ] {
            let url = DatabaseUrl::parse(raw).expect("a postgres URL");
            let redacted = url.redacted();
            assert!(
                !redacted.contains(hidden) && !redacted.contains("nter2"),
                "{raw} → {redacted}"
            );
            assert!(redacted.contains(shown), "{raw} → {redacted}");
            assert_eq!(format!("{url}"), redacted);
        }
        let url = DatabaseUrl::parse("postgres://app@db/k?sslpassword=s3cret&sslmode=require")
            .expect("url");
        assert_eq!(
            url.expose(),
            "postgres://app@db/k?sslmode=require",
            "never reaches the driver, which would log it"
        );
        assert_eq!(url.ignored_params(), ["sslpassword"]);
        let url = DatabaseUrl::parse("postgres://app@db/k?sslpassword=s3cret").expect("url");
        assert_eq!(url.expose(), "postgres://app@db/k");
        let sqlite = DatabaseUrl::parse("sqlite://./data/k.db?mode=rwc").expect("sqlite");
        assert_eq!(sqlite.redacted(), "sqlite://./data/k.db?mode=rwc");
    }
}
