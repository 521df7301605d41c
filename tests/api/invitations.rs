//! `/api/v1/tenants/{tenant}/invitations` and the account page's answers: a
//! tenant's key reaches only the people of its own tenant. Everyone else (a
//! superadmin, another tenant's owner, an email with no account) looks the
//! same to it, is joined only by accepting, and keeps their sessions
//! whatever the tenant does.

use keysmith::domain::{Actor, people::accounts::Role, people::totp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    admin::{PASSWORD, account, admin_user, browser, csrf_of, sign_in},
    both_engines,
    helpers::{TestApp, expect_error, expect_json},
};

/// Signs `email` in and answers the tenant's invitation from the account
/// page, as the person would.
pub(crate) async fn accept_invitation(app: &TestApp, email: &str, tenant: &str) {
    let client = browser();
    sign_in(app, &client, email, PASSWORD).await;
    let res = answer(app, &client, tenant, "accept").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "accepted");
}

async fn answer(
    app: &TestApp,
    client: &reqwest::Client,
    tenant: &str,
    answer: &str,
) -> reqwest::Response {
    let page = account_page(app, client).await;
    client
        .post(app.url("/admin/account/invitations"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("tenant", tenant),
            ("answer", answer),
        ])
        .send()
        .await
        .expect("answer")
}

async fn account_page(app: &TestApp, client: &reqwest::Client) -> String {
    let res = client
        .get(app.url("/admin/account"))
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.expect("html")
}

async fn invite(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/api/v1/tenants/acme/invitations", &body).await
}

/// Whether the browser's session still reaches an admin page.
async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let res = client
        .get(app.url("/admin/account"))
        .send()
        .await
        .expect("page");
    res.status() == StatusCode::OK
}

async fn roles_of(app: &TestApp, email: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN admin_users u ON u.id = m.user_id \
         WHERE u.email = $1 ORDER BY m.role",
    )
    .bind(email)
    .fetch_all(app.state.pool())
    .await
    .expect("roles")
}

/// The error body with nothing that names the email, to compare answers.
async fn refusal(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    json!({"status": status.as_u16(), "body": body})
}

both_engines! {
    async fn a_tenant_key_cannot_reach_people_outside_its_tenant(app: TestApp) {
        account(&app, "root@instance.test", true).await;
        let globex = app.create_tenant("globex").await;
        let boss = account(&app, "boss@globex.test", false).await;
        keysmith::domain::people::accounts::grant(app.state.pool(), &globex.id, &boss.id, Role::Owner, app.now()).await.expect("grant");
        let root = browser();
        sign_in(&app, &root, "root@instance.test", PASSWORD).await;
        let boss_browser = browser();
        sign_in(&app, &boss_browser, "boss@globex.test", PASSWORD).await;

        let put = |email: &str, role: &str| app.client.put(app.url(&format!("/api/v1/tenants/acme/admins/{email}"))).bearer_auth(&app.admin_key).json(&json!({"role": role})).send();
        let delete = |email: &str| app.client.delete(app.url(&format!("/api/v1/tenants/acme/admins/{email}"))).bearer_auth(&app.admin_key).send();
        // The superadmin, another tenant's owner and an email with no account
        // get the very same answer: nothing tells which emails have accounts.
        let nobody = refusal(put("nobody@instance.test", "owner").await.expect("put")).await;
        assert_eq!(nobody["status"], 404, "{nobody}");
        for email in ["root@instance.test", "boss@globex.test"] {
            assert_eq!(refusal(put(email, "owner").await.expect("put")).await, nobody, "{email}");
            assert_eq!(refusal(put(email, "viewer").await.expect("put")).await, nobody, "{email}");
            assert_eq!(refusal(delete(email).await.expect("delete")).await, nobody, "{email}");
        }
        assert_eq!(refusal(delete("nobody@instance.test").await.expect("delete")).await, nobody);
        assert!(roles_of(&app, "root@instance.test").await.is_empty(), "the superadmin was given no role");
        assert_eq!(roles_of(&app, "boss@globex.test").await, ["owner"], "globex's owner joined nothing");

        // Invitations answer alike too, and change nothing until accepted.
        totp::set_tenant_requirement(app.state.pool(), "acme", true, &Actor::Cli, app.now()).await.expect("require totp");
        let invite = |email: &str| invite(&app, json!({"email": email, "role": "owner"}));
        let shape = |mut body: Value| { body["email"] = Value::Null; body["created_at"] = Value::Null; body["expires_at"] = Value::Null; body };
        let to_nobody = shape(expect_json(invite("nobody@instance.test").await, StatusCode::ACCEPTED).await);
        assert_eq!(shape(expect_json(invite("boss@globex.test").await, StatusCode::ACCEPTED).await), to_nobody);
        assert_eq!(shape(expect_json(invite("root@instance.test").await, StatusCode::ACCEPTED).await), to_nobody);
        assert!(signed_in(&app, &root).await && signed_in(&app, &boss_browser).await, "nobody was signed out");
        // acme requires TOTP: an invited person is not pushed into its setup.
        let keys = boss_browser.get(app.url("/admin/api-keys")).send().await.expect("page");
        assert_eq!(keys.status(), StatusCode::OK, "boss still works in globex without TOTP");
        assert_eq!(roles_of(&app, "boss@globex.test").await, ["owner"]);
        totp::set_tenant_requirement(app.state.pool(), "acme", false, &Actor::Cli, app.now()).await.expect("no totp");

        // The superadmin accepts; the tenant can then lower and remove its
        // role, and its sessions hold all the same.
        assert!(account_page(&app, &root).await.contains("Invitations"), "the invitation is shown");
        assert_eq!(answer(&app, &root, "acme", "accept").await.status(), StatusCode::SEE_OTHER);
        assert_eq!(roles_of(&app, "root@instance.test").await, ["owner"]);
        expect_json(put("root@instance.test", "viewer").await.expect("put"), StatusCode::OK).await;
        assert!(signed_in(&app, &root).await, "a superadmin's sessions survive a tenant lowering it");
        assert_eq!(delete("root@instance.test").await.expect("delete").status(), StatusCode::NO_CONTENT);
        assert!(signed_in(&app, &root).await, "…and removing it");

        // boss declines: nothing joined, the invitation is used up.
        assert_eq!(answer(&app, &boss_browser, "acme", "decline").await.status(), StatusCode::SEE_OTHER);
        assert_eq!(roles_of(&app, "boss@globex.test").await, ["owner"]);
        assert_eq!(answer(&app, &boss_browser, "acme", "accept").await.status(), StatusCode::NOT_FOUND);
        let pending = expect_json(app.get("/api/v1/tenants/acme/invitations").await, StatusCode::OK).await;
        assert_eq!(pending["items"].as_array().map(Vec::len), Some(1), "only nobody's is left: {pending}");
        assert_eq!(pending["items"][0]["email"], "nobody@instance.test");
    }

    async fn invitations_refuse_bad_input_and_stay_in_their_tenant(app: TestApp) {
        admin_user(&app, "admin@acme.test", Role::Admin).await;
        let invite = |body: Value| invite(&app, body);
        expect_error(invite(json!({"email": "not-an-email", "role": "viewer"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        expect_error(invite(json!({"email": "new@acme.test", "role": "emperor"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        expect_error(invite(json!({"email": "new@acme.test", "role": "viewer", "superadmin": true})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        expect_error(invite(json!({"email": "admin@acme.test", "role": "owner"})).await, StatusCode::CONFLICT, "conflict").await;
        assert_eq!(app.count("tenant_invitations").await, 0, "no refusal left a row");

        expect_json(invite(json!({"email": "New@Acme.test", "role": "viewer"})).await, StatusCode::ACCEPTED).await;
        let body = expect_json(invite(json!({"email": "new@acme.test", "role": "admin"})).await, StatusCode::ACCEPTED).await;
        assert_eq!(body["role"], "admin", "a second invitation replaces the first");
        assert_eq!(app.count("tenant_invitations").await, 1);

        // Another tenant's key sees none of it.
        let globex = app.create_tenant("globex").await;
        let globex_key = app.management_key(&globex).await;
        let res = app.get_as(&globex_key, "/api/v1/tenants/acme/invitations").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.client.delete(app.url("/api/v1/tenants/acme/invitations/new@acme.test")).bearer_auth(&globex_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.client.delete(app.url("/api/v1/tenants/globex/invitations/new@acme.test")).bearer_auth(&globex_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "globex has no such invitation");
        assert_eq!(app.count("tenant_invitations").await, 1);

        // Withdrawn, it cannot be accepted; a lapsed one neither.
        account(&app, "new@acme.test", false).await;
        let res = app.client.delete(app.url("/api/v1/tenants/acme/invitations/new@acme.test")).bearer_auth(&app.admin_key).send().await.expect("delete");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let client = browser();
        sign_in(&app, &client, "new@acme.test", PASSWORD).await;
        assert_eq!(answer(&app, &client, "acme", "accept").await.status(), StatusCode::NOT_FOUND);
        expect_json(invite(json!({"email": "new@acme.test", "role": "viewer"})).await, StatusCode::ACCEPTED).await;
        app.clock.advance(time::Duration::days(15));
        let client = browser();
        sign_in(&app, &client, "new@acme.test", PASSWORD).await;
        assert!(!account_page(&app, &client).await.contains("Invitations"), "a lapsed invitation is not shown");
        assert_eq!(answer(&app, &client, "acme", "accept").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(answer(&app, &client, "acme", "maybe").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(roles_of(&app, "new@acme.test").await.is_empty());
        let audited: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events WHERE action LIKE 'admin.%' ORDER BY id")
            .fetch_all(app.state.pool()).await.expect("audit");
        assert_eq!(audited, ["admin.invite", "admin.invite", "admin.uninvite", "admin.invite"]);
    }

    async fn an_invitation_is_accepted_once_under_a_burst(app: TestApp) {
        account(&app, "new@acme.test", false).await;
        expect_json(app.post("/api/v1/tenants/acme/invitations", &json!({"email": "new@acme.test", "role": "admin"})).await, StatusCode::ACCEPTED).await;
        let client = browser();
        sign_in(&app, &client, "new@acme.test", PASSWORD).await;
        let csrf = csrf_of(&account_page(&app, &client).await);
        let mut burst = JoinSet::new();
        for i in 0..12 {
            let (client, url, csrf) = (client.clone(), app.url("/admin/account/invitations"), csrf.clone());
            let answer = if i % 2 == 0 { "accept" } else { "decline" };
            burst.spawn(async move {
                client.post(url).form(&[("csrf", csrf.as_str()), ("tenant", "acme"), ("answer", answer)]).send().await.expect("answer").status()
            });
        }
        let statuses = burst.join_all().await;
        let answered = statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count();
        assert_eq!(answered, 1, "one answer wins: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::NOT_FOUND), "{statuses:?}");
        assert_eq!(app.count("tenant_invitations").await, 0);
        let outcomes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action IN ('admin.accept', 'admin.decline')")
            .fetch_one(app.state.pool()).await.expect("audit");
        assert_eq!(outcomes, 1, "one answer audited");
        assert!(roles_of(&app, "new@acme.test").await.len() <= 1);
    }
}
