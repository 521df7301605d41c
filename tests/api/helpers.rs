//! `TestApp`: the real application on port 0, on a fresh database of either
//! engine, with a clock the test can move.

use std::{path::PathBuf, sync::Arc};

use keysmith::domain::crypto::random;
use keysmith::{
    AppState,
    config::Config,
    db::Db,
    domain::{
        Actor, Name, Scope, TenantSlug,
        keys::{self, ExpiryRequest, NewKey},
        tenancy::caps::TenantCaps,
        tenancy::service_users::{self, NewServiceUser},
        tenancy::tenants::{self, NewTenant, Tenant},
    },
    startup,
};
use keysmith_verify::{Capabilities, KeyPrefix, ManualClock, Peppers};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use keysmith::config::Engine;

/// A local port that refuses connections, held while this lives: bound but
/// never listening, so nothing answers on it and no other test can take it
/// (`smtp_sink.py` holds its port the same way while "down").
pub struct ClosedPort(tokio::net::TcpSocket);

impl ClosedPort {
    pub fn bind() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        Self(socket)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.0.local_addr().expect("addr")
    }
}

/// Where PostgreSQL is expected; override with `KEYSMITH_TEST_POSTGRES_URL`.
fn postgres_admin_url() -> String {
    std::env::var("KEYSMITH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database: a SQLite file in a temp dir, or a new PostgreSQL
/// database dropped when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match engine {
            Engine::Sqlite => Self {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("keysmith.db").display()
                ),
                engine,
                dir,
                pg_name: None,
            },
            Engine::Postgres => {
                use sqlx::Connection;
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|err| {
                    panic!(
                        "\n\n*** PostgreSQL is not reachable at {admin}: {err}\n*** Every database test runs on SQLite AND PostgreSQL; \
                         start PostgreSQL (see README) or set KEYSMITH_TEST_POSTGRES_URL.\n"
                    )
                });
                let name = format!("keysmith_test_{}", random::base62(12).to_ascii_lowercase());
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Self {
                    url: format!("{base}/{name}"),
                    engine,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// A raw text dump of everything stored: the SQLite files, or `pg_dump`.
    pub fn dump(&self) -> String {
        match self.engine {
            Engine::Sqlite => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(self.dir.path()).expect("read temp dir") {
                    let path = entry.expect("entry").path();
                    if path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("keysmith.db"))
                    {
                        all.extend(std::fs::read(&path).expect("read database file"));
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Engine::Postgres => {
                let out = std::process::Command::new("pg_dump")
                    .arg("--data-only")
                    .arg(&self.url)
                    .output()
                    .expect("run pg_dump");
                assert!(
                    out.status.success(),
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8(out.stdout).expect("utf-8 dump")
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub db: TestDb,
    /// The default tenant, `acme`, and a management key for it.
    pub tenant: Tenant,
    pub admin_key: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_on(TestDb::new(engine).await).await
    }

    /// Starts the app on an existing database (e.g. to restart it).
    pub async fn spawn_on(db: TestDb) -> Self {
        Self::spawn_with(db, &[], None).await
    }

    /// Starts the app with extra `KEYSMITH_*` variables and, to keep a moved
    /// time across a restart, an existing clock.
    pub async fn spawn_with(
        db: TestDb,
        env: &[(&str, String)],
        clock: Option<ManualClock>,
    ) -> Self {
        Self::spawn_at(db, env, clock, "127.0.0.1:0").await
    }

    /// Starts the app on `addr` (a restart on the address a client knows).
    pub async fn spawn_at(
        db: TestDb,
        env: &[(&str, String)],
        clock: Option<ManualClock>,
        addr: &str,
    ) -> Self {
        keysmith_verify::tls::install_default_provider();
        let config = test_config(&db, env);
        let clock = clock.unwrap_or_else(ManualClock::starting_now);
        // The production path from configuration to state, with the test's clock.
        let state = startup::prepare_with_clock(config, Arc::new(clock.clone()))
            .await
            .expect("state");

        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server_state = state.clone();
        let server = tokio::spawn(async move {
            startup::serve(server_state, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });

        let now = clock.now_for_setup();
        let tenant = match tenants::find_by_slug(state.pool(), "acme")
            .await
            .expect("query")
        {
            Some(t) => t,
            None => tenants::create(
                state.pool(),
                NewTenant {
                    slug: TenantSlug::parse("acme").expect("slug"),
                    name: Name::parse("name", "Acme").expect("name"),
                    key_prefix: KeyPrefix::default(),
                },
                now,
            )
            .await
            .expect("tenant"),
        };
        let mut app = Self {
            base: format!("http://{addr}"),
            state,
            clock,
            client: reqwest::Client::new(),
            db,
            tenant: tenant.clone(),
            admin_key: String::new(),
            shutdown: Some(tx),
            server: Some(server),
        };
        app.admin_key = app.management_key(&tenant).await;
        app
    }

    /// The app restarted with `KEYSMITH_WEBHOOK_ALLOW_PRIVATE=1`: the tests'
    /// webhook receivers listen on loopback, which the default refuses.
    pub async fn allowing_private_webhooks(self) -> Self {
        let clock = self.clock.clone();
        let db = self.stop().await;
        let allow = [("KEYSMITH_WEBHOOK_ALLOW_PRIVATE", "1".to_owned())];
        Self::spawn_with(db, &allow, Some(clock)).await
    }

    /// Stops the server gracefully and waits for it (flushes background work).
    pub async fn stop(mut self) -> TestDb {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        self.state.db.pool.close().await;
        std::mem::replace(&mut self.db, TestDb::placeholder())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now_for_setup()
    }

    /// Creates another tenant directly in the database.
    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        tenants::create(
            self.state.pool(),
            NewTenant {
                slug: TenantSlug::parse(slug).expect("slug"),
                name: Name::parse("name", slug).expect("name"),
                key_prefix: KeyPrefix::default(),
            },
            self.now(),
        )
        .await
        .expect("tenant")
    }

    /// A management key (scope `keysmith:admin`) for `tenant`, as the CLI makes it.
    pub async fn management_key(&self, tenant: &Tenant) -> String {
        self.management_key_with(tenant, Scope::admin()).await
    }

    /// A management key of `scope` for `tenant`, as the CLI makes it.
    pub async fn management_key_with(&self, tenant: &Tenant, scope: Scope) -> String {
        let pool = self.state.pool();
        let owner = match service_users::find_by_name(pool, &tenant.id, "keysmith-management")
            .await
            .expect("query")
        {
            Some(o) => o,
            None => service_users::create(
                pool,
                &tenant.id,
                NewServiceUser {
                    name: Name::parse("name", "keysmith-management").expect("name"),
                    owner_email: None,
                    description: None,
                },
                TenantCaps::of(&self.state.config).service_users,
                &Actor::Cli,
                self.now(),
            )
            .await
            .expect("service user"),
        };
        let issued = keys::create(
            pool,
            &self.state.peppers,
            tenant,
            NewKey {
                service_user_id: owner.id,
                name: Name::parse("name", "management").expect("name"),
                expiry: ExpiryRequest::TenantDefault,
                allowed: Capabilities::everything(),
                scopes: vec![scope],
                limits: Default::default(),
            },
            TenantCaps::of(&self.state.config).keys,
            &Actor::Cli,
            self.now(),
        )
        .await
        .expect("management key");
        issued.key.expose().to_owned()
    }

    // ---- typed JSON API calls (always as the `acme` management key unless `*_as`) ----

    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(&self.admin_key, path, body).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_as(&self.admin_key, path).await
    }

    /// Creates a service user in `acme`; returns its id.
    pub async fn create_service_user(&self, name: &str) -> String {
        let body = json!({"name": name, "owner_email": format!("{name}@owner.test")});
        let res = self.post("/api/v1/tenants/acme/service-users", &body).await;
        let body = expect_json(res, StatusCode::CREATED).await;
        body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a key in `acme` with the given extra fields; returns the 201 body.
    pub async fn create_key(&self, service_user_id: &str, extra: Value) -> Value {
        let mut body = json!({"service_user_id": service_user_id, "name": "deploy"});
        merge(&mut body, extra);
        let res = self.post("/api/v1/tenants/acme/keys", &body).await;
        expect_json(res, StatusCode::CREATED).await
    }

    pub async fn rotate_key(&self, key_id: &str) -> Response {
        self.post(
            &format!("/api/v1/tenants/acme/keys/{key_id}/rotate"),
            &json!({}),
        )
        .await
    }

    pub async fn revoke_key(&self, key_id: &str, reason: &str) -> Response {
        self.post(
            &format!("/api/v1/tenants/acme/keys/{key_id}/revoke"),
            &json!({"reason": reason}),
        )
        .await
    }

    /// `POST /api/v1/verify` as `acme`; returns the verdict body.
    pub async fn verify(&self, key: &str, tool: Option<&str>) -> Value {
        let res = self
            .post("/api/v1/verify", &json!({"key": key, "tool": tool}))
            .await;
        expect_json(res, StatusCode::OK).await
    }

    pub async fn verify_code(&self, key: &str) -> String {
        self.verify(key, None).await["code"]
            .as_str()
            .expect("code")
            .to_owned()
    }

    /// Counts rows of `table` (for "nothing half-written" checks).
    pub async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.state.pool())
            .await
            .expect("count");
        n
    }

    /// One scheduler tick at the current (test) time.
    pub async fn tick(&self) {
        keysmith::jobs::tick(&self.state).await.expect("tick");
    }

    /// One round of the webhook task at the current (test) time.
    pub async fn deliver_webhooks(&self) -> keysmith::notify::webhooks::WebhookReport {
        keysmith::jobs::deliver_webhooks(&self.state)
            .await
            .expect("webhook round")
    }

    /// A tick (which writes due events, e.g. `key.expired`), then a webhook
    /// round that delivers them.
    pub async fn tick_and_deliver(&self) {
        self.tick().await;
        self.deliver_webhooks().await;
    }
}

fn test_config(db: &TestDb, env: &[(&str, String)]) -> Config {
    let pepper_file: PathBuf = db.dir.path().join("pepper");
    let data_dir = db.dir.path().to_path_buf();
    let url = db.url.clone();
    Config::from_lookup(|name| match name {
        "KEYSMITH_DATABASE_URL" => Some(url.clone()),
        "KEYSMITH_DATA_DIR" => Some(data_dir.display().to_string()),
        "KEYSMITH_PEPPER_FILE" => Some(pepper_file.display().to_string()),
        "KEYSMITH_BIND" => Some("127.0.0.1:0".into()),
        _ => env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()),
    })
    .expect("test config")
}

impl TestApp {
    /// A second application state on the same database, pepper and clock: a
    /// second instance, for tests of work that several instances share.
    pub async fn second_instance(&self, env: &[(&str, String)]) -> AppState {
        let config = test_config(&self.db, env);
        let database = Db::connect(&config.database_url).await.expect("connect");
        let peppers = Peppers::load_or_create(&config.pepper_file).expect("pepper");
        AppState::new(database, peppers, Arc::new(self.clock.clone()), config).expect("state")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestDb {
    fn placeholder() -> Self {
        Self {
            url: String::new(),
            engine: Engine::Sqlite,
            dir: tempfile::tempdir().expect("temp dir"),
            pg_name: None,
        }
    }
}

trait SetupClock {
    fn now_for_setup(&self) -> time::OffsetDateTime;
}

impl SetupClock for ManualClock {
    fn now_for_setup(&self) -> time::OffsetDateTime {
        keysmith_verify::Clock::now(self)
    }
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(res: Response, status: StatusCode) -> Value {
    let actual = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts an error response: status and `error.code`.
pub async fn expect_error(res: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_json(res, status).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// Generates `mod name { sqlite, postgres }` tests running the same body on both engines.
#[macro_export]
macro_rules! both_engines {
    ($(async fn $name:ident($app:ident : TestApp) $body:block)*) => {
        $(
            mod $name {
                use super::*;
                async fn run($app: $crate::helpers::TestApp) $body

                #[tokio::test]
                async fn sqlite() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Engine::Sqlite).await).await
                }

                #[tokio::test]
                async fn postgres() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Engine::Postgres).await).await
                }
            }
        )*
    };
}

/// One audited call: tool (or subject), outcome, reason and the status answered.
pub type AuditedCall = (String, String, String, Option<i64>);

/// The `tool.call` audit rows of `key_id`, oldest first, once at least
/// `min` are written (the audit is written off the request path).
pub async fn audited_calls(app: &TestApp, key_id: &str, min: usize) -> Vec<AuditedCall> {
    let sql = "SELECT tool, outcome, reason, status FROM audit_events WHERE key_id = $1 AND action = 'tool.call' ORDER BY id";
    rows_once(app, sql, key_id, min).await
}

/// The rows of `sql` (its one bound value `$1` being `key_id`) once at
/// least `min` are there (audit rows are written off the request path).
pub async fn rows_once<T>(app: &TestApp, sql: &str, key_id: &str, min: usize) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    for _ in 0..100 {
        let rows: Vec<T> = sqlx::query_as(sql)
            .bind(key_id)
            .fetch_all(app.state.pool())
            .await
            .expect("audit");
        if rows.len() >= min {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {min} audit rows for {key_id}");
}

/// The secret part of a plaintext key, as the key format defines it.
pub fn secret_of(key: &str) -> String {
    let key = keysmith_verify::ApiKey::parse(key).expect("a key");
    String::from_utf8(key.secret().to_vec()).expect("base62")
}
