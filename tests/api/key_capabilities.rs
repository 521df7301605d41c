//! A key's three allowlists (issue 28): created, read, listed and rotated
//! through the API and the admin UI, answered by `/api/v1/verify` and read
//! by the remote verifier, least privilege between them, bad input refused
//! whole, and the upgrade of keys that named only tools.

use keysmith::domain::users::Role;
use keysmith_verify::{RemoteVerifier, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin::{PASSWORD, admin_user, browser, csrf_of, field, sign_in},
    both_engines,
    helpers::{expect_error, expect_json},
};

/// The three lists as the API shows them.
fn lists(key: &Value) -> [Value; 3] {
    ["allowed_tools", "allowed_resources", "allowed_prompts"].map(|f| key[f].clone())
}

const NAMED: [&str; 2] = ["test://static-text", "file:///public/*"];

both_engines! {
    async fn the_lists_are_kept_shown_and_carried_by_rotation(app: TestApp) {
        let su = app.create_service_user("reader").await;
        let key = app.create_key(&su, json!({"allowed_resources": NAMED, "allowed_prompts": ["greeting", "review/*"]})).await;
        // Naming resources and prompts leaves tools out: none.
        let expected = [json!([]), json!(NAMED), json!(["greeting", "review/*"])];
        assert_eq!(lists(&key), expected, "create: {key}");
        let id = key["id"].as_str().expect("id");
        let read = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await, StatusCode::OK).await;
        assert_eq!(lists(&read), expected);
        let listed = expect_json(app.get("/api/v1/tenants/acme/keys").await, StatusCode::OK).await;
        let item = listed["items"].as_array().expect("items").iter().find(|k| k["id"] == id).expect("listed").clone();
        assert_eq!(lists(&item), expected);

        let verdict = app.verify(key["key"].as_str().expect("key"), None).await;
        assert_eq!(verdict["code"], "valid");
        assert_eq!(lists(&verdict), expected, "verify answers them: {verdict}");

        let rotation = expect_json(app.rotate_key(id).await, StatusCode::CREATED).await;
        assert_eq!(lists(&rotation["new"]), expected, "rotation carries all three");
        let new_key = rotation["new"]["key"].as_str().expect("new key");
        assert_eq!(lists(&app.verify(new_key, None).await), expected);

        // A key that names nothing reaches everything: every list null.
        let open = app.create_key(&su, json!({})).await;
        assert_eq!(lists(&open), [Value::Null, Value::Null, Value::Null]);
        // `["*"]` spells every one of a kind; the others are then none.
        let all_tools = app.create_key(&su, json!({"allowed_tools": ["*"]})).await;
        assert_eq!(lists(&all_tools), [json!(["*"]), json!([]), json!([])]);
    }

    async fn the_remote_verifier_reads_the_lists(app: TestApp) {
        let su = app.create_service_user("reader").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["echo"], "allowed_resources": ["file:///public/*"]})).await;
        let remote = RemoteVerifier::new(&app.base, app.admin_key.clone()).expect("client");
        let verified = remote.verify(key["key"].as_str().expect("key")).await.expect("reachable").expect("valid");
        let allowed = &verified.allowed;
        assert!(allowed.tools().allows("echo") && !allowed.tools().allows("secret_admin"));
        assert!(allowed.resources().allows("file:///public/readme.txt"));
        assert!(!allowed.resources().allows("file:///public/../secret/passwd"));
        assert!(!allowed.resources().allows("file:///secret/passwd"));
        assert!(!allowed.prompts().allows("greeting"), "prompts not named: none");

        let open = app.create_key(&su, json!({})).await;
        let verified = remote.verify(open["key"].as_str().expect("key")).await.expect("reachable").expect("valid");
        assert!(!verified.allowed.is_limited(), "no list: everything");
    }

    async fn bad_lists_are_refused_whole(app: TestApp) {
        let su = app.create_service_user("reader").await;
        let (keys_before, audit_before) = (app.count("api_keys").await, app.count("audit_events").await);
        let long_uri = format!("test://{}", "a".repeat(2048));
        let too_many: Vec<String> = (0..101).map(|i| format!("test://{i}")).collect();
        let cases: Vec<(Value, &str)> = vec![
            (json!({"allowed_resources": []}), "allowed_resources: list at least one entry, or leave the list out"),
            (json!({"allowed_prompts": []}), "allowed_prompts: list at least one entry"),
            (json!({"allowed_resources": too_many}), "allowed_resources: at most 100 entries"),
            (json!({"allowed_prompts": ["bad prompt"]}), "allowed_prompts: names are 1 to 128 characters"),
            (json!({"allowed_resources": ["file:///public/../*"]}), "allowed_resources: a resource pattern is"),
            (json!({"allowed_resources": ["file:///public/%2e*"]}), "allowed_resources: a resource pattern is"),
            (json!({"allowed_resources": ["file:///a*b"]}), "allowed_resources: a resource pattern is"),
            (json!({"allowed_resources": ["test://x y"]}), "allowed_resources: a resource pattern is"),
            (json!({"allowed_resources": [long_uri]}), "allowed_resources: a resource pattern is"),
            (json!({"allowed_resources": [7]}), ""),
            // One good list does not save a bad one.
            (json!({"allowed_tools": ["echo"], "allowed_resources": ["test://ok"], "allowed_prompts": [""]}), "allowed_prompts:"),
        ];
        for (extra, message) in cases {
            let mut body = json!({"service_user_id": su, "name": "bad"});
            body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            let res = app.post("/api/v1/tenants/acme/keys", &body).await;
            let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
            let said = error["error"]["message"].as_str().unwrap_or_default();
            assert!(said.contains(message), "{extra}: {error}");
        }
        assert_eq!(app.count("api_keys").await, keys_before, "no key written by bad input");
        assert_eq!(app.count("audit_events").await, audit_before);
    }

    // The upgrade: a key that named only tools reaches no resource or
    // prompt. Migration 0090 is undone on a database holding such keys,
    // then applied again as on an upgrade.
    async fn keys_that_named_only_tools_lose_resources_and_prompts_on_upgrade(app: TestApp) {
        let su = app.create_service_user("old-bot").await;
        let tools_only = app.create_key(&su, json!({"allowed_tools": ["echo"]})).await;
        let open = app.create_key(&su, json!({})).await;
        let pool = app.state.pool();
        for statement in [
            "ALTER TABLE api_keys DROP COLUMN allowed_resources",
            "ALTER TABLE api_keys DROP COLUMN allowed_prompts",
            "DELETE FROM _sqlx_migrations WHERE version = 90",
        ] {
            sqlx::query(statement).execute(pool).await.expect(statement);
        }
        app.state.db.migrate().await.expect("0090 applies on an existing database");
        let stored = |id: Value| async move {
            sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(
                "SELECT allowed_tools, allowed_resources, allowed_prompts FROM api_keys WHERE id = $1",
            )
            .bind(id.as_str().expect("id").to_owned())
            .fetch_one(pool)
            .await
            .expect("row")
        };
        assert_eq!(stored(tools_only["id"].clone()).await, (Some(r#"["echo"]"#.into()), Some("[]".into()), Some("[]".into())));
        assert_eq!(stored(open["id"].clone()).await, (None, None, None), "a key that named nothing still reaches everything");
        let verdict = app.verify(tools_only["key"].as_str().expect("key"), None).await;
        assert_eq!(lists(&verdict), [json!(["echo"]), json!([]), json!([])]);

        // A row the migration never saw (NULL beside a tools list) is read
        // under the same rule.
        sqlx::query("UPDATE api_keys SET allowed_resources = NULL, allowed_prompts = NULL WHERE id = $1")
            .bind(tools_only["id"].as_str().expect("id"))
            .execute(pool)
            .await
            .expect("update");
        let id = tools_only["id"].as_str().expect("id");
        let read = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{id}")).await, StatusCode::OK).await;
        assert_eq!(lists(&read), [json!(["echo"]), json!([]), json!([])]);
    }

    async fn the_admin_form_sets_the_lists_and_the_key_page_shows_them(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let su = app.create_service_user("ci-bot").await;
        let client = browser();
        sign_in(&app, &client, "admin@acme.test", PASSWORD).await;
        let submit = |resources: &str| {
            let client = client.clone();
            let (app, su, resources) = (&app, su.clone(), resources.to_owned());
            async move {
                let page = client.get(app.url("/admin/api-keys")).send().await.expect("page").text().await.expect("html");
                let form = [
                    ("csrf", csrf_of(&page)),
                    ("form_token", field(&page, "form_token")),
                    ("tenant", "acme".to_owned()),
                    ("service_user_id", su),
                    ("name", "ui-reader".to_owned()),
                    ("expires_in_days", "30".to_owned()),
                    ("allowed_tools", String::new()),
                    ("allowed_resources", resources),
                    ("allowed_prompts", "greeting\nreview/*".to_owned()),
                ];
                client.post(app.url("/admin/api-keys")).form(&form).send().await.expect("create")
            }
        };
        let keys_before = app.count("api_keys").await;
        let refused = submit("file:///public/../*").await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = refused.text().await.expect("html");
        let beside = html.split("id=\"new-resources-error\">").nth(1).expect("the error beside Resources");
        assert!(beside.split("</p>").next().expect("text").contains("a resource pattern is"), "{html}");
        assert_eq!(app.count("api_keys").await, keys_before);

        assert_eq!(submit("test://static-text, file:///public/*").await.status(), StatusCode::OK);
        let listed = expect_json(app.get("/api/v1/tenants/acme/keys").await, StatusCode::OK).await;
        let key = listed["items"].as_array().expect("items").iter().find(|k| k["name"] == "ui-reader").expect("created").clone();
        assert_eq!(lists(&key), [json!([]), json!(NAMED), json!(["greeting", "review/*"])]);
        let id = key["id"].as_str().expect("id");
        let html = client.get(app.url(&format!("/admin/api-keys/{id}"))).send().await.expect("page").text().await.expect("html");
        assert!(html.contains("<dt>Allowed tools</dt><dd>none</dd>"), "{html}");
        assert!(html.contains("<dt>Allowed resources</dt><dd>test://static-text, file:///public/*</dd>"), "{html}");
        assert!(html.contains("<dt>Allowed prompts</dt><dd>greeting, review/*</dd>"), "{html}");
    }
}
