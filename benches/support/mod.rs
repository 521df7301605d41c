//! What the page benchmarks share: a release server on a SQLite file in a
//! temporary directory, and an admin signed in to it over loopback HTTP.

use std::sync::Arc;

use keysmith::{
    AppState,
    config::Config,
    db::Db,
    domain::{
        Actor, Email, Name, TenantSlug,
        people::accounts::{self, Password, Role},
        tenancy::service_users::{self, NewServiceUser, ServiceUser},
        tenancy::tenants::{self, NewTenant, Tenant},
    },
    startup,
};
use keysmith_verify::{KeyPrefix, Peppers, SystemClock};

const PASSWORD: &str = "benchmark password";
const ADMIN: &str = "admin@example.com";

/// One worker thread: the server and the client share it, as on a small box.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Configuration for a server whose data lives in `dir`; the scheduler is
/// kept out of the way of the measurement.
pub fn config(dir: &tempfile::TempDir) -> Config {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let data_dir = dir.path().display().to_string();
    Config::from_lookup(|name| match name {
        "KEYSMITH_DATABASE_URL" => Some(url.clone()),
        "KEYSMITH_DATA_DIR" => Some(data_dir.clone()),
        "KEYSMITH_PEPPER_FILE" => Some(format!("{data_dir}/pepper")),
        "KEYSMITH_SCHEDULER_INTERVAL_SECS" => Some("86400".into()),
        _ => None,
    })
    .expect("config")
}

pub async fn open(config: &Config) -> Db {
    let db = Db::connect(&config.database_url).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

/// A tenant and service users of these names, owned by one person.
pub async fn tenant_with_owners(db: &Db, slug: &str, names: &[&str]) -> (Tenant, Vec<ServiceUser>) {
    let now = time::OffsetDateTime::now_utc();
    let tenant = tenants::create(
        &db.pool,
        NewTenant {
            slug: TenantSlug::parse(slug).expect("slug"),
            name: Name::parse("name", slug).expect("name"),
            key_prefix: KeyPrefix::default(),
        },
        now,
    )
    .await
    .expect("tenant");
    let mut owners = Vec::new();
    for name in names {
        let new = NewServiceUser {
            name: Name::parse("name", name).expect("name"),
            owner_email: Some(Email::parse("ops@example.com").expect("email")),
            description: None,
        };
        owners.push(
            service_users::create(&db.pool, &tenant.id, new, i64::MAX, &Actor::Cli, now)
                .await
                .expect("service user"),
        );
    }
    (tenant, owners)
}

/// An admin of every one of `tenants`, for [`serve_signed_in`].
pub async fn grant_admin(db: &Db, tenants: &[&Tenant]) {
    let now = time::OffsetDateTime::now_utc();
    let admin = accounts::create(
        &db.pool,
        &Email::parse(ADMIN).expect("email"),
        Password::parse(PASSWORD.into()).expect("password"),
        false,
        now,
    )
    .await
    .expect("admin");
    for tenant in tenants {
        accounts::grant(&db.pool, &tenant.id, &admin.id, Role::Admin, now)
            .await
            .expect("grant");
    }
}

/// Starts the real app on `db` and returns its base URL and a client
/// carrying the admin's session cookie.
pub async fn serve_signed_in(db: Db, config: &Config) -> (String, reqwest::Client) {
    let peppers = Peppers::load_or_create(&config.pepper_file).expect("pepper");
    let state = AppState::new(db, peppers, Arc::new(SystemClock), config.clone()).expect("state");
    state.sessions.migrate().await.expect("sessions");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(startup::serve(state, listener, std::future::pending()));

    keysmith_verify::tls::install_default_provider();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = client
        .post(format!("{base}/admin/sign-in"))
        .form(&[("email", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER, "signed in");
    (base, client)
}

/// GETs a page that must answer 200; returns its length.
pub async fn fetch(client: &reqwest::Client, url: String) -> usize {
    let res = client.get(&url).send().await.expect("page");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "{url}");
    res.bytes().await.expect("body").len()
}
