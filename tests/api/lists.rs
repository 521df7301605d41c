//! Lists stay bounded however many objects a tenant has: service users and
//! admins a page at a time, on the API and on the admin page.

use keysmith::domain::{
    Actor, Email, Name,
    people::accounts::Role,
    tenancy::service_users::{self, NewServiceUser},
    tenancy::tenants::Tenant,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    admin::{PASSWORD, admin_user, browser, sign_in},
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// `count` service users named `su-000`, `su-001`, … in `tenant`, straight
/// through the domain (the HTTP path is not what these tests are about).
pub(crate) async fn many_service_users(app: &TestApp, tenant: &Tenant, count: usize) {
    for n in 0..count {
        let new = NewServiceUser {
            name: Name::parse("name", &format!("su-{n:03}")).expect("name"),
            owner_email: Some(Email::parse("owner@acme.test").expect("email")),
            description: None,
        };
        service_users::create(
            app.state.pool(),
            &tenant.id,
            new,
            i64::MAX,
            &Actor::Cli,
            app.now(),
        )
        .await
        .expect("service user");
    }
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect()
}

both_engines! {
    async fn service_users_are_listed_a_page_at_a_time(app: TestApp) {
        many_service_users(&app, &app.tenant, 7).await;
        let globex = app.create_tenant("globex").await;
        many_service_users(&app, &globex, 3).await;
        let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let after = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
            let page = expect_json(app.get(&format!("/api/v1/tenants/acme/service-users?limit=3{after}")).await, StatusCode::OK).await;
            let batch = names(&page);
            assert!(batch.len() <= 3, "a page holds at most the limit: {page}");
            seen.extend(batch);
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let in_acme: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM service_users WHERE tenant_id = $1")
            .bind(&app.tenant.id).fetch_one(app.state.pool()).await.expect("count");
        assert_eq!(i64::try_from(seen.len()).expect("len"), in_acme, "every service user once: {seen:?}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "none twice: {seen:?}");
        assert!(pages >= 3, "{pages} pages");
        // Created in the same second (the test clock stands still): the id breaks the tie.
        let default = expect_json(app.get("/api/v1/tenants/acme/service-users").await, StatusCode::OK).await;
        assert!(default["next_cursor"].is_null(), "8 fit in the default page of 50");
        assert_eq!(names(&default), seen, "newest first, the same order page by page");
    }

    async fn bad_list_parameters_are_refused(app: TestApp) {
        for (query, code) in [
            ("cursor=garbage", "invalid_cursor"),
            ("cursor=12.a-b", "invalid_cursor"),
            ("cursor=x.abc", "invalid_cursor"),
            ("limit=0", "invalid_limit"),
            ("limit=201", "invalid_limit"),
            ("limit=-1", "invalid_limit"),
        ] {
            let res = app.get(&format!("/api/v1/tenants/acme/service-users?{query}")).await;
            let body = expect_error(res, StatusCode::BAD_REQUEST, code).await;
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{query}: {body}");
        }
        expect_error(app.get("/api/v1/tenants/acme/service-users?limit=ten").await, StatusCode::BAD_REQUEST, "invalid_query").await;
        expect_error(app.get("/api/v1/tenants/acme/keys?limit=500").await, StatusCode::BAD_REQUEST, "invalid_limit").await;
        expect_json(app.get("/api/v1/tenants/acme/service-users?limit=200").await, StatusCode::OK).await;
    }

    async fn admins_are_listed_a_page_at_a_time(app: TestApp) {
        for n in 0..5 {
            admin_user(&app, &format!("admin{n}@acme.test"), Role::Viewer).await;
        }
        let globex = app.create_tenant("globex").await;
        let outsider = crate::admin::account(&app, "outsider@globex.test", false).await;
        keysmith::domain::people::accounts::grant(app.state.pool(), &globex.id, &outsider.id, Role::Admin, app.now()).await.expect("grant");
        let (mut seen, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let after = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
            let page = expect_json(app.get(&format!("/api/v1/tenants/acme/admins?limit=2{after}")).await, StatusCode::OK).await;
            let batch = page["items"].as_array().expect("items").clone();
            assert!(batch.len() <= 2, "{page}");
            seen.extend(batch.iter().map(|a| a["email"].as_str().expect("email").to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        seen.sort();
        let expected: Vec<String> = (0..5).map(|n| format!("admin{n}@acme.test")).collect();
        assert_eq!(seen, expected, "each once, and no one of another tenant");
        expect_error(app.get("/api/v1/tenants/acme/admins?cursor=garbage").await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
        expect_error(app.get("/api/v1/tenants/acme/admins?limit=0").await, StatusCode::BAD_REQUEST, "invalid_limit").await;
    }

    async fn the_admin_service_users_page_is_paginated(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        many_service_users(&app, &app.tenant, 55).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let first = client.get(app.url("/admin/service-users?tenant=acme")).send().await.expect("page").text().await.expect("html");
        let rows = |html: &str| html.matches("<a href=\"/admin/service-users/").count();
        assert_eq!(rows(&first), 50, "one page of 50");
        let (_, rest) = first.split_once("/admin/service-users?tenant=acme&amp;cursor=").expect("a link to the next page");
        let cursor = rest.split('"').next().expect("cursor");
        let second = client.get(app.url(&format!("/admin/service-users?tenant=acme&cursor={cursor}"))).send().await.expect("page").text().await.expect("html");
        assert_eq!(rows(&second), 55 + 1 - 50, "the rest, with the management service user");
        assert!(!second.contains("cursor="), "no link past the last page");
        let bad = client.get(app.url("/admin/service-users?tenant=acme&cursor=garbage")).send().await.expect("page");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
