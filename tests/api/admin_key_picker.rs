//! The key form picks a service user without listing them all: a drop-down
//! while a tenant has few, a name with suggestions when it has many.

use keysmith::domain::people::accounts::Role;
use reqwest::StatusCode;

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
    lists::many_service_users,
};

both_engines! {
    async fn the_key_form_names_a_service_user_when_there_are_too_many_to_list(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        many_service_users(&app, &app.tenant, 120).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let page = client.get(app.url("/admin/api-keys?tenant=acme")).send().await.expect("page").text().await.expect("html");
        assert!(page.contains("list=\"service-user-names\""), "a text field with suggestions");
        assert!(!page.contains("<select id=\"new-su\""), "no drop-down of every service user");
        let options = page.matches("<option").count();
        assert!(options <= 100 + 10, "at most 100 suggestions (and the status filter): {options}");
        assert!(page.contains("<option value=\"su-000\">") && !page.contains("su-119"), "the first names by name, not the last");

        // A name past the suggestions is typed and found by exact name.
        let form = |name: &str, page: &str| vec![
            ("csrf", csrf_of(page)),
            ("form_token", field(page, "form_token")),
            ("tenant", "acme".to_owned()),
            ("service_user", name.to_owned()),
            ("name", "typed".to_owned()),
            ("expires_in_days", "30".to_owned()),
        ];
        let res = client.post(app.url("/admin/api-keys")).form(&form("su-119", &page)).send().await.expect("create");
        assert_eq!(res.status(), StatusCode::OK);
        let owner: String = sqlx::query_scalar("SELECT s.name FROM api_keys k JOIN service_users s ON s.id = k.service_user_id WHERE k.name = 'typed'")
            .fetch_one(app.state.pool()).await.expect("the key");
        assert_eq!(owner, "su-119");

        let page = client.get(app.url("/admin/api-keys?tenant=acme")).send().await.expect("page").text().await.expect("html");
        let res = client.post(app.url("/admin/api-keys")).form(&form("nobody", &page)).send().await.expect("create");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.expect("html").contains("no service user named `nobody`"));

        // The filter takes a name too, and shows it back.
        let filtered = client.get(app.url("/admin/api-keys?tenant=acme&service_user=su-119")).send().await.expect("page").text().await.expect("html");
        assert!(filtered.contains("typed") && filtered.contains("value=\"su-119\""), "{filtered}");
        let other = client.get(app.url("/admin/api-keys?tenant=acme&service_user=su-001")).send().await.expect("page").text().await.expect("html");
        assert!(!other.contains(">typed<"), "another service user's keys are not shown");

        // A service user's page links here by id: its name is filled in on the form.
        let id: String = sqlx::query_scalar("SELECT id FROM service_users WHERE name = 'su-119'")
            .fetch_one(app.state.pool()).await.expect("id");
        let linked = client.get(app.url(&format!("/admin/api-keys?tenant=acme&service_user_id={id}"))).send().await.expect("page").text().await.expect("html");
        assert!(linked.contains("id=\"new-su\" name=\"service_user\" list=\"service-user-names\" value=\"su-119\""), "{linked}");
    }

    async fn another_tenants_service_user_cannot_be_named_on_the_key_form(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let globex = app.create_tenant("globex").await;
        many_service_users(&app, &globex, 1).await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let res = client.get(app.url("/admin/api-keys?tenant=acme&service_user=su-000")).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "globex's su-000 is not acme's");
    }
}
