//! The SQLite point read without sqlx (`SqlVerifier` on a SQLite file) gives
//! the same verdicts as the read through sqlx, for every combination of the
//! columns a verdict depends on.

use std::sync::Arc;

use serde_json::json;

use crate::both_engines;
use keysmith::config::Engine;
use keysmith_verify::{ApiKey, KeyPrefix, SqlVerifier};

both_engines! {
    async fn the_direct_sqlite_read_gives_the_sqlx_verdicts(app: TestApp) {
        let clock = Arc::new(app.clock.clone());
        let direct = SqlVerifier::new(app.state.pool().clone(), app.state.peppers.clone(), clock.clone());
        let through_sqlx = direct.clone().without_direct_reads();
        assert_eq!(direct.reads_directly(), app.db.engine == Engine::Sqlite, "only SQLite files are read directly");
        assert!(!through_sqlx.reads_directly());

        let other = app.create_tenant("other").await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"], "expires_in_days": 5})).await;
        let id = key["id"].as_str().expect("id");
        let unknown = ApiKey::generate(&KeyPrefix::default());
        let presented = [key["key"].as_str().expect("key"), unknown.expose(), "ks_not_a_key"];
        let now = app.now().unix_timestamp();
        let (past, future) = (now - 10, now + 10);
        let pool = app.state.pool();
        let mut compared = 0;
        for status in ["active", "rotating", "expired", "revoked"] {
            for expires_at in [past, future] {
                for cutoff_at in [None, Some(past), Some(future)] {
                    for (su_disabled, tenant_disabled) in [(None, None), (Some(1_i64), None), (None, Some(1_i64))] {
                        sqlx::query("UPDATE api_keys SET status = $1, expires_at = $2, cutoff_at = $3 WHERE id = $4")
                            .bind(status).bind(expires_at).bind(cutoff_at).bind(id)
                            .execute(pool).await.expect("set key");
                        sqlx::query("UPDATE service_users SET disabled_at = $1 WHERE id = $2")
                            .bind(su_disabled).bind(&su).execute(pool).await.expect("set service user");
                        sqlx::query("UPDATE tenants SET disabled_at = $1 WHERE id = $2")
                            .bind(tenant_disabled).bind(&app.tenant.id).execute(pool).await.expect("set tenant");
                        for plain in presented {
                            for tenant in [None, Some(app.tenant.id.as_str()), Some(other.id.as_str())] {
                                for tool in [None, Some("whoami"), Some("echo")] {
                                    let a = direct.verify(plain, tenant, tool).await.expect("direct read");
                                    let b = through_sqlx.verify(plain, tenant, tool).await.expect("sqlx read");
                                    assert_eq!(a, b, "{status} expires {expires_at} cutoff {cutoff_at:?} su {su_disabled:?} tenant {tenant_disabled:?} scope {tenant:?} tool {tool:?}");
                                    compared += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 4 * 2 * 3 * 3 * 3 * 3 * 3);
    }

    async fn a_direct_read_after_the_pool_closed_fails_closed(app: TestApp) {
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({})).await;
        let plain = key["key"].as_str().expect("key");
        let verifier = SqlVerifier::new(app.state.pool().clone(), app.state.peppers.clone(), Arc::new(app.clock.clone()));
        assert!(verifier.verify(plain, None, None).await.expect("backend").is_ok());
        app.state.pool().close().await;
        assert!(verifier.verify(plain, None, None).await.is_err(), "no verdict without the database");
    }
}
