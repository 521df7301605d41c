//! The admin keys page of a tenant with 100,000 keys, served by the real app
//! on SQLite and fetched over HTTP by a signed-in admin.
//!
//! Baseline measured in the same run: the same page for a tenant with 100
//! keys in the same database. The ratio says whether the page grows with the
//! tenant (it must not: it reads one index range of 50 rows).

mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith::domain::UnixTime;
use keysmith::{
    db::Db,
    domain::{tenancy::service_users::ServiceUser, tenancy::tenants::Tenant},
};

const BIG: i64 = 100_000;
const SMALL: i64 = 100;

async fn tenant_with_keys(db: &Db, slug: &str, keys: i64) -> (Tenant, ServiceUser) {
    let (tenant, mut owners) =
        support::tenant_with_owners(db, slug, &["deploy-bot", "billing-mcp", "nightly-cron"]).await;
    // One statement writes them all: the page is measured, not the seeding.
    // A mix like a real tenant's: most active, some rotating or revoked.
    let now = UnixTime::from(time::OffsetDateTime::now_utc());
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
    let rt = support::runtime();
    let dir = tempfile::tempdir().expect("dir");
    let config = support::config(&dir);

    let (base, client, rotating_user, deep_cursor) = rt.block_on(async {
        let db = support::open(&config).await;
        let (big, rotating_user) = tenant_with_keys(&db, "big", BIG).await;
        let (small, _) = tenant_with_keys(&db, "small", SMALL).await;
        support::grant_admin(&db, &[&big, &small]).await;
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

        let (base, client) = support::serve_signed_in(db, &config).await;
        (base, client, rotating_user, deep_cursor)
    });

    let fetch = |path: String| support::fetch(&client, format!("{base}{path}"));
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
