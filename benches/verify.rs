//! Verification cost: pure compute, and through the database (cache off).
//!
//! Baselines measured in the same run, so BENCHMARKS.md can report ratios:
//! - `compute/argon2id_verify`: what verifying a key would cost with a password hash;
//! - `db/<engine>/<keys>/select_1`: one round trip to the database, the floor of any lookup.
//!
//! The database groups run once per table size in `KEYSMITH_BENCH_KEYS`
//! (comma-separated, default `10000,1000000`), to show the lookup is flat.

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith::{
    config::DatabaseUrl,
    db::Db,
    domain::{
        Actor, Name, TenantSlug,
        keys::{self, ExpiryRequest, NewKey},
        tenancy::service_users::{self, NewServiceUser},
        tenancy::tenants::{self, NewTenant},
    },
};
use keysmith_verify::{ApiKey, Capabilities, KeyPrefix, Peppers, SqlVerifier, SystemClock};
use subtle::ConstantTimeEq;

/// Keys in the table during the database benchmarks, one run per size.
fn key_counts() -> Vec<usize> {
    std::env::var("KEYSMITH_BENCH_KEYS")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("KEYSMITH_BENCH_KEYS: comma-separated counts")
        })
        .collect()
}

/// Real keys issued per run; the rest of the table is filler rows.
const SAMPLED: usize = 16;

/// The group name and label of a table size: `10k`, `1M`.
fn size_label(keys: usize) -> String {
    match keys {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

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
    let argon = keysmith::domain::people::accounts::argon2();
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

/// Fills a fresh database with `keys` keys (a few real ones issued as the
/// server does, the rest copies of one with other ids, inserted in one
/// statement); returns a verifier and the real keys' plaintexts.
async fn seeded(url: &str, keys: usize) -> (Db, SqlVerifier, Vec<String>) {
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
        i64::MAX, // the bench's own database: no cap
        &Actor::Cli,
        now,
    )
    .await
    .expect("service user");
    let mut plaintexts = Vec::new();
    for _ in 0..SAMPLED {
        let new = NewKey {
            service_user_id: su.id.clone(),
            name: Name::parse("n", "k").expect("name"),
            expiry: ExpiryRequest::TenantDefault,
            allowed: Capabilities::everything(),
            scopes: Vec::new(),
            limits: Default::default(),
        };
        let issued = keys::create(
            &db.pool,
            &peppers,
            &tenant,
            new,
            i64::MAX,
            &Actor::System,
            now,
        )
        .await
        .expect("key");
        plaintexts.push(issued.key.expose().to_owned());
    }
    let template = ApiKey::parse(&plaintexts[0]).expect("key");
    let filler = keys.saturating_sub(SAMPLED);
    // A literal count: a bound one would need a different integer type per engine.
    let fill = format!(
        "INSERT INTO api_keys (id, tenant_id, service_user_id, name, prefix, secret_hash, pepper_version, hint, status, allowed_tools, scopes, created_at, created_by, expires_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {filler}) \
         SELECT 'filler' || i, tenant_id, service_user_id, name, prefix, secret_hash, pepper_version, hint, status, allowed_tools, scopes, created_at, created_by, expires_at \
         FROM n CROSS JOIN (SELECT * FROM api_keys WHERE id = $1) t"
    );
    if filler > 0 {
        sqlx::query(&fill)
            .bind(template.key_id())
            .execute(&db.pool)
            .await
            .expect("filler keys");
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
        keysmith::domain::crypto::random::base62(8).to_ascii_lowercase()
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
    for keys in key_counts() {
        for (engine, url) in &engines {
            // A fresh database per size: SQLite in its own file, PostgreSQL emptied.
            let url = match *engine {
                "sqlite" => url.replace("bench.db", &format!("bench-{keys}.db")),
                _ => {
                    rt.block_on(async {
                        let db = Db::connect(&DatabaseUrl::parse(url).expect("url"))
                            .await
                            .expect("connect");
                        for statement in ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"] {
                            sqlx::query(statement)
                                .execute(&db.pool)
                                .await
                                .expect("empty the database");
                        }
                        db.pool.close().await;
                    });
                    url.clone()
                }
            };
            bench_engine(c, &rt, engine, &url, keys);
        }
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

/// The `SELECT 1` floor and a cache-off verification on one engine and table size.
fn bench_engine(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    engine: &str,
    url: &str,
    keys: usize,
) {
    let (db, verifier, plaintexts) = rt.block_on(seeded(url, keys));
    let mut group = c.benchmark_group(format!("db/{engine}/{}", size_label(keys)));
    group.bench_function("select_1", |b| {
        b.to_async(rt).iter(|| async {
            sqlx::query("SELECT 1")
                .execute(&db.pool)
                .await
                .expect("select")
        });
    });
    let mut verify = |name: &str, verifier: &SqlVerifier| {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.to_async(rt).iter(|| {
                i = (i + 1) % plaintexts.len();
                let key = &plaintexts[i];
                async move {
                    verifier
                        .verify(key, None, None)
                        .await
                        .expect("backend")
                        .expect("valid")
                }
            });
        });
    };
    verify("verify_cache_off", &verifier);
    if verifier.reads_directly() {
        // The same lookup through sqlx's worker thread, as before the direct read.
        verify(
            "verify_cache_off_through_sqlx",
            &verifier.clone().without_direct_reads(),
        );
    }
    group.finish();
    rt.block_on(db.pool.close());
}

criterion_group!(benches, compute, database);
criterion_main!(benches);
