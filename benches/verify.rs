//! Verification cost: pure compute, and through the database (cache off).
//!
//! Baselines measured in the same run, so BENCHMARKS.md can report ratios:
//! - `compute/argon2id_verify`: what verifying a key would cost with a password hash;
//! - `db/<engine>/select_1`: one round trip to the database, the floor of any lookup.

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith::{
    config::DatabaseUrl,
    db::Db,
    domain::{
        Actor, Name, TenantSlug,
        keys::{self, ExpiryRequest, NewKey},
        service_users::{self, NewServiceUser},
        tenants::{self, NewTenant},
    },
};
use keysmith_verify::{ApiKey, KeyPrefix, Peppers, SqlVerifier, SystemClock, ToolAllowlist};
use subtle::ConstantTimeEq;

/// Keys in the table during the database benchmarks.
const KEYS: usize = 10_000;

fn peppers() -> Peppers {
    Peppers::parse(&format!("1 {}", "5a".repeat(32))).expect("pepper")
}

fn compute(c: &mut Criterion) {
    let peppers = peppers();
    let key = ApiKey::generate(&KeyPrefix::default());
    let stored = peppers.digest_current(key.secret());
    let raw = key.expose().to_owned();
    let mut group = c.benchmark_group("compute");
    group.bench_function("parse_checksum_hmac_compare", |b| {
        b.iter(|| {
            let parsed = ApiKey::parse(black_box(&raw)).expect("valid");
            let digest = peppers.digest(1, parsed.secret()).expect("version");
            bool::from(digest.ct_eq(black_box(&stored)))
        });
    });
    let argon = keysmith::domain::users::argon2();
    let hash = argon2::PasswordHasher::hash_password(&argon, key.secret())
        .expect("hash")
        .to_string();
    group.sample_size(10);
    group.bench_function("argon2id_verify", |b| {
        b.iter(|| {
            let parsed = argon2::PasswordHash::new(&hash).expect("hash");
            argon2::PasswordVerifier::verify_password(&argon, black_box(key.secret()), &parsed)
                .is_ok()
        });
    });
    group.finish();
}

/// Fills a fresh database with `KEYS` keys; returns a verifier and a few plaintexts.
async fn seeded(url: &str) -> (Db, SqlVerifier, Vec<String>) {
    let db = Db::connect(&DatabaseUrl::parse(url).expect("url"))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let peppers = Arc::new(peppers());
    let now = time::OffsetDateTime::now_utc();
    let tenant = tenants::create(
        &db.pool,
        NewTenant {
            slug: TenantSlug::parse("bench").expect("slug"),
            name: Name::parse("n", "Bench").expect("name"),
            key_prefix: KeyPrefix::default(),
        },
        now,
    )
    .await
    .expect("tenant");
    let su = service_users::create(
        &db.pool,
        &tenant.id,
        NewServiceUser {
            name: Name::parse("n", "bot").expect("name"),
            owner_email: None,
            description: None,
        },
        &Actor::Cli,
        now,
    )
    .await
    .expect("service user");
    let mut plaintexts = Vec::new();
    for i in 0..KEYS {
        let new = NewKey {
            service_user_id: su.id.clone(),
            name: Name::parse("n", "k").expect("name"),
            expiry: ExpiryRequest::TenantDefault,
            allowed_tools: ToolAllowlist::any_tool(),
            scopes: Vec::new(),
            limits: Default::default(),
        };
        let issued = keys::create(&db.pool, &peppers, &tenant, new, &Actor::System, now)
            .await
            .expect("key");
        if i % (KEYS / 16) == 0 {
            plaintexts.push(issued.key.expose().to_owned());
        }
    }
    let verifier = SqlVerifier::new(db.pool.clone(), peppers, Arc::new(SystemClock));
    (db, verifier, plaintexts)
}

fn database(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let pg_admin = std::env::var("KEYSMITH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg_name = format!(
        "keysmith_bench_{}",
        keysmith::domain::random::base62(8).to_ascii_lowercase()
    );
    let engines = [
        (
            "sqlite",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
        ),
        (
            "postgres",
            format!("{}/{pg_name}", pg_admin.rsplit_once('/').expect("url").0),
        ),
    ];
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&pg_admin)
            .await
            .expect("PostgreSQL must be running for this benchmark");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {pg_name}").as_str())
            .await
            .expect("create db");
    });
    for (engine, url) in engines {
        let (db, verifier, plaintexts) = rt.block_on(seeded(&url));
        let mut group = c.benchmark_group(format!("db/{engine}"));
        group.bench_function("select_1", |b| {
            b.to_async(&rt).iter(|| async {
                sqlx::query("SELECT 1")
                    .execute(&db.pool)
                    .await
                    .expect("select")
            });
        });
        if engine == "sqlite" {
            // The same round trip without the `Any` driver: how much of the floor is the driver's.
            let native = rt
                .block_on(sqlx::SqlitePool::connect(&url))
                .expect("native pool");
            group.bench_function("select_1_native_pool", |b| {
                b.to_async(&rt).iter(|| async {
                    sqlx::query("SELECT 1")
                        .execute(&native)
                        .await
                        .expect("select")
                });
            });
            rt.block_on(native.close());
        }
        let mut i = 0;
        group.bench_function("verify_cache_off", |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % plaintexts.len();
                let key = &plaintexts[i];
                let verifier = &verifier;
                async move {
                    verifier
                        .verify(key, None, None)
                        .await
                        .expect("backend")
                        .is_ok()
                }
            });
        });
        group.finish();
        rt.block_on(db.pool.close());
    }
    rt.block_on(async {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin).await {
            let _ = sqlx::Executor::execute(
                &mut conn,
                format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)").as_str(),
            )
            .await;
        }
    });
}

criterion_group!(benches, compute, database);
criterion_main!(benches);
