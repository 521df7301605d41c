//! The admin keys page of a tenant with 100,000 keys, served by the real app
//! on SQLite and fetched over HTTP by a signed-in admin.
//!
//! Baseline measured in the same run: the same page for a tenant with 100
//! keys in the same database. The ratio says whether the page grows with the
//! tenant (it must not: it reads one index range of 50 rows).

use keysmith::domain::UnixTime;
use std::{sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith::{
    AppState,
    config::Config,
    db::Db,
    domain::{
        Email, Name, TenantSlug,
        service_users::{self, NewServiceUser, ServiceUser},
        tenants::{self, NewTenant, Tenant},
        users::{self, Password, Role},
    },
    startup,
};
use keysmith_verify::{KeyPrefix, Peppers, SystemClock};

const BIG: i64 = 100_000;
const SMALL: i64 = 100;
const PASSWORD: &str = "benchmark password";

async fn tenant_with_keys(db: &Db, slug: &str, keys: i64) -> (Tenant, ServiceUser) {
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
    for name in ["deploy-bot", "billing-mcp", "nightly-cron"] {
        let new = NewServiceUser {
            name: Name::parse("name", name).expect("name"),
            owner_email: Some(Email::parse("ops@example.com").expect("email")),
            description: None,
        };
        owners.push(
            service_users::create(
                &db.pool,
                &tenant.id,
                new,
                &keysmith::domain::Actor::Cli,
                now,
            )
            .await
            .expect("service user"),
        );
    }
    // One statement writes them all: the page is measured, not the seeding.
    // A mix like a real tenant's: most active, some rotating or revoked.
    let now = UnixTime::from(now);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO api_keys (id, tenant_id, service_user_id, name, prefix, secret_hash, pepper_version, hint, status, scopes, created_at, created_by, expires_at, cutoff_at) \
         SELECT $2 || printf('%010d', i), $3, CASE i % 3 WHEN 0 THEN $4 WHEN 1 THEN $5 ELSE $6 END, \
                'key ' || i, 'ks', hex(randomblob(32)), 1, substr(hex(randomblob(2)), 1, 4), \
                CASE WHEN i % 50 = 0 THEN 'rotating' WHEN i % 7 = 0 THEN 'revoked' ELSE 'active' END, \
                '[]', $7 - i, 'system', $7 + 86400 * 90, CASE WHEN i % 50 = 0 THEN $7 + 86400 ELSE NULL END \
         FROM n",
    )
    .bind(keys)
    .bind(slug)
    .bind(&tenant.id)
    .bind(&owners[0].id)
    .bind(&owners[1].id)
    .bind(&owners[2].id)
    .bind(now)
    .execute(&db.pool)
    .await
    .expect("seed keys");
    (tenant, owners.swap_remove(2))
}

fn keys_page(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let data_dir = dir.path().display().to_string();
    let config = Config::from_lookup(|name| match name {
        "KEYSMITH_DATABASE_URL" => Some(url.clone()),
        "KEYSMITH_DATA_DIR" => Some(data_dir.clone()),
        "KEYSMITH_PEPPER_FILE" => Some(format!("{data_dir}/pepper")),
        "KEYSMITH_SCHEDULER_INTERVAL_SECS" => Some("86400".into()),
        _ => None,
    })
    .expect("config");

    let (base, client, rotating_user, deep_cursor) = rt.block_on(async {
        let db = Db::connect(&config.database_url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let (big, rotating_user) = tenant_with_keys(&db, "big", BIG).await;
        let (small, _) = tenant_with_keys(&db, "small", SMALL).await;
        let now = time::OffsetDateTime::now_utc();
        let admin = users::create(
            &db.pool,
            &Email::parse("admin@example.com").expect("email"),
            Password::parse(PASSWORD.into()).expect("password"),
            false,
            now,
        )
        .await
        .expect("admin");
        for tenant in [&big, &small] {
            users::grant(&db.pool, &tenant.id, &admin.id, Role::Admin, now)
                .await
                .expect("grant");
        }
        sqlx::query("ANALYZE")
            .execute(&db.pool)
            .await
            .expect("analyze");
        // A page deep in the list: the cursor just after the 50,000th newest key.
        let (at, id): (i64, String) = sqlx::query_as(
            "SELECT created_at, id FROM api_keys WHERE tenant_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET 50000",
        )
        .bind(&big.id)
        .fetch_one(&db.pool)
        .await
        .expect("deep key");
        let deep_cursor = format!("{at}.{id}");

        let peppers = Peppers::load_or_create(&config.pepper_file).expect("pepper");
        let state =
            AppState::new(db, peppers, Arc::new(SystemClock), config.clone()).expect("state");
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
            .form(&[("email", "admin@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .expect("sign in");
        assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER, "signed in");
        (base, client, rotating_user, deep_cursor)
    });

    let fetch = |path: String| {
        let client = &client;
        let url = format!("{base}{path}");
        async move {
            let res = client.get(&url).send().await.expect("page");
            assert_eq!(res.status(), reqwest::StatusCode::OK, "{url}");
            res.bytes().await.expect("body").len()
        }
    };
    let mut group = c.benchmark_group("admin_keys_page");
    group.measurement_time(Duration::from_secs(8));
    let pages = [
        (
            "small_tenant_first_page",
            "/admin/api-keys?tenant=small".to_owned(),
        ),
        (
            "big_tenant_first_page",
            "/admin/api-keys?tenant=big".to_owned(),
        ),
        (
            "big_tenant_page_at_50000",
            format!("/admin/api-keys?tenant=big&cursor={deep_cursor}"),
        ),
        (
            "big_tenant_rotating_filter",
            "/admin/api-keys?tenant=big&status=rotating".to_owned(),
        ),
        (
            "big_tenant_service_user_filter",
            format!(
                "/admin/api-keys?tenant=big&service_user_id={}",
                rotating_user.id
            ),
        ),
    ];
    for (name, path) in pages {
        group.bench_function(name, |b| b.to_async(&rt).iter(|| fetch(path.clone())));
    }
    group.finish();
}

criterion_group!(benches, keys_page);
criterion_main!(benches);
