//! `POST /api/v1/secret-scanning/github`: a signed leak report revokes the
//! key and tells its owner; a bad signature, a replay and a false positive
//! change nothing; the reported plaintext is stored nowhere.

use base64::Engine as _;
use p256::{
    ecdsa::{DerSignature, SigningKey, signature::Signer},
    pkcs8::{EncodePublicKey, LineEnding},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::{
    both_engines,
    helpers::{Engine, TestApp, TestDb, expect_json, secret_of},
};

/// The app with a fresh key pair standing in for GitHub's.
async fn app_with_scanner(engine: Engine) -> (TestApp, SigningKey) {
    let db = TestDb::new(engine).await;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("random");
    let signing = SigningKey::from_slice(&seed).expect("a P-256 key");
    let pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let set =
        json!({"public_keys": [{"key_identifier": "gh-test-1", "key": pem, "is_current": true}]});
    let path = db.dir.path().join("github-keys.json");
    std::fs::write(&path, set.to_string()).expect("key set");
    let env = [("KEYSMITH_GITHUB_SCANNING_KEYS", path.display().to_string())];
    (TestApp::spawn_with(db, &env, None).await, signing)
}

async fn report(
    app: &TestApp,
    key_id: &str,
    signing: &SigningKey,
    body: &str,
) -> reqwest::Response {
    let signature: DerSignature = signing.sign(body.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature.as_bytes());
    app.client
        .post(app.url("/api/v1/secret-scanning/github"))
        .header("content-type", "application/json")
        .header("github-public-key-identifier", key_id)
        .header("github-public-key-signature", encoded)
        .body(body.to_owned())
        .send()
        .await
        .expect("report")
}

async fn revocations(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'key.revoke'")
        .fetch_one(app.state.pool())
        .await
        .expect("count")
}

async fn run(engine: Engine) {
    let (app, github) = app_with_scanner(engine).await;
    let su = app.create_service_user("ci-bot").await;
    let leaked = app.create_key(&su, json!({"name": "deploy"})).await;
    let bystander = app.create_key(&su, json!({"name": "other"})).await;
    let token = leaked["key"].as_str().expect("key");
    let fake = keysmith_verify::ApiKey::generate(&keysmith_verify::KeyPrefix::default());
    let body = json!([
        {"token": token, "type": "keysmith_api_key", "url": "https://github.com/acme/app/blob/main/.env", "source": "content"},
        {"token": fake.expose(), "type": "keysmith_api_key", "url": "https://github.com/acme/app/blob/main/x", "source": "content"},
    ])
    .to_string();

    // Unsigned, wrongly signed, or signed by an unknown key: nothing happens.
    let other = SigningKey::from_slice(&[9u8; 32]).expect("key");
    for res in [
        report(&app, "gh-test-1", &other, &body).await,
        report(&app, "gh-unknown", &github, &body).await,
        app.client
            .post(app.url("/api/v1/secret-scanning/github"))
            .body(body.clone())
            .send()
            .await
            .expect("post"),
    ] {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let tampered = body.replace("main/.env", "main/.env2");
    let signature: DerSignature = github.sign(body.as_bytes());
    let res = app
        .client
        .post(app.url("/api/v1/secret-scanning/github"))
        .header("github-public-key-identifier", "gh-test-1")
        .header(
            "github-public-key-signature",
            base64::engine::general_purpose::STANDARD.encode(signature.as_bytes()),
        )
        .body(tampered)
        .send()
        .await
        .expect("post");
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a signature covers the exact body"
    );
    assert_eq!(app.verify_code(token).await, "valid");
    assert_eq!(revocations(&app).await, 0);

    let res = report(&app, "gh-test-1", &github, &body).await;
    let answer = res.text().await.expect("text");
    assert!(
        !answer.contains(token) && !answer.contains(fake.expose()),
        "tokens are never echoed: {answer}"
    );
    let verdicts: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(verdicts[0]["label"], "true_positive");
    assert_eq!(
        verdicts[0]["token_hash"],
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    );
    assert_eq!(verdicts[1]["label"], "false_positive");
    assert_eq!(
        app.verify_code(token).await,
        "revoked",
        "refused from the next request on"
    );
    assert_eq!(
        app.verify_code(bystander["key"].as_str().expect("key"))
            .await,
        "valid"
    );
    let detail = expect_json(
        app.get(&format!(
            "/api/v1/tenants/acme/keys/{}",
            leaked["id"].as_str().expect("id")
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        detail["revoked_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("leaked"),
        "{detail}"
    );
    let told: Vec<String> = sqlx::query_scalar(
        "SELECT recipient FROM outbox WHERE kind = 'revocation' AND key_id = $1",
    )
    .bind(leaked["id"].as_str().expect("id"))
    .fetch_all(app.state.pool())
    .await
    .expect("outbox");
    assert_eq!(told, ["ci-bot@owner.test"], "the owner is told");

    // A replay is harmless: still true, nothing revoked or sent twice.
    let replay = report(&app, "gh-test-1", &github, &body).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(revocations(&app).await, 1);
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'revocation'")
        .fetch_one(app.state.pool())
        .await
        .expect("count");
    assert_eq!(outbox, 1);

    // The reported plaintext is stored nowhere.
    let dump = app.db.dump();
    assert!(!dump.contains(&secret_of(token)) && !dump.contains(&secret_of(fake.expose())));
}

#[tokio::test]
async fn github_reports_sqlite() {
    run(Engine::Sqlite).await;
}

#[tokio::test]
async fn github_reports_postgres() {
    run(Engine::Postgres).await;
}

both_engines! {
    async fn reports_are_refused_when_no_key_set_is_configured(app: TestApp) {
        let res = app.client.post(app.url("/api/v1/secret-scanning/github")).body("[]").send().await.expect("post");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

both_engines! {
    async fn gitlab_revocation_api_needs_its_own_scope(app: TestApp) {
        let types = expect_json(app.client.get(app.url("/v1/revocable_token_types")).send().await.expect("get"), StatusCode::OK).await;
        assert_eq!(types["types"][0]["type"], "keysmith_api_key");
        let su = app.create_service_user("ci-bot").await;
        let leaked = app.create_key(&su, json!({})).await;
        let token = leaked["key"].as_str().expect("key");
        let body = json!([{"type": "keysmith_api_key", "token": token, "location": "https://gitlab.example/acme/app/-/blob/main/.env"}]);
        let post = |key: Option<String>| {
            let mut req = app.client.post(app.url("/v1/revoke_tokens")).json(&body);
            if let Some(key) = key {
                req = req.bearer_auth(key);
            }
            req.send()
        };
        assert_eq!(post(None).await.expect("post").status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(Some(app.admin_key.clone())).await.expect("post").status(), StatusCode::FORBIDDEN, "the admin scope is not enough");
        assert_eq!(app.verify_code(token).await, "valid");
        let reporter = app.management_key_with(&app.tenant, keysmith::domain::Scope::revoke_leaked()).await;
        let verdicts = expect_json(post(Some(reporter.clone())).await.expect("post"), StatusCode::OK).await;
        assert_eq!(verdicts[0]["label"], "true_positive");
        assert_eq!(app.verify_code(token).await, "revoked");
        let detail = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{}", leaked["id"].as_str().expect("id"))).await, StatusCode::OK).await;
        assert!(detail["revoked_reason"].as_str().unwrap_or_default().contains("GitLab token revocation at \"https://gitlab.example/"), "{detail}");
        // The reporting key can do nothing else.
        assert_eq!(app.get_as(&reporter, "/api/v1/tenants/acme/keys").await.status(), StatusCode::FORBIDDEN);
    }
}

/// A genuine report revokes a key stored as active, whatever else refuses
/// it at that moment.
async fn leaked_while_disabled(engine: Engine) {
    let (app, github) = app_with_scanner(engine).await;
    let su = app.create_service_user("ci-bot").await;
    let first = app.create_key(&su, json!({"name": "first"})).await;
    let second = app.create_key(&su, json!({"name": "second"})).await;
    // Where it was found is the reporter's text: it comes back bounded and flat.
    let location = format!(
        "https://example.test/leak\n\nCall +1 555 0100 now {}",
        "x".repeat(5000)
    );
    let leak = |key: &Value| {
        json!([{"token": key["key"], "type": "keysmith_api_key", "url": location, "source": "content"}]).to_string()
    };

    // The service user is disabled when the report comes in…
    let res = app
        .post(
            &format!("/api/v1/tenants/acme/service-users/{su}/disable"),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let verdicts = expect_json(
        report(&app, "gh-test-1", &github, &leak(&first)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(verdicts[0]["label"], "true_positive");
    let res = app
        .post(
            &format!("/api/v1/tenants/acme/service-users/{su}/enable"),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        app.verify_code(first["key"].as_str().expect("key")).await,
        "revoked",
        "enabling it again does not revive the leaked key"
    );
    assert_eq!(revocations(&app).await, 1);
    let detail = expect_json(
        app.get(&format!(
            "/api/v1/tenants/acme/keys/{}",
            first["id"].as_str().expect("id")
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    let reason = detail["revoked_reason"].as_str().expect("reason");
    assert!(
        reason.starts_with(
            "leaked: reported by GitHub secret scanning at \"https://example.test/leak"
        ),
        "{reason}"
    );
    assert!(
        !reason.contains('\n') && reason.chars().count() < 300,
        "{reason}"
    );

    // …or its whole tenant is.
    let set_tenant_disabled = |at: Option<i64>| {
        sqlx::query("UPDATE tenants SET disabled_at = $1 WHERE slug = 'acme'")
            .bind(at)
            .execute(app.state.pool())
    };
    set_tenant_disabled(Some(app.now().unix_timestamp()))
        .await
        .expect("disable");
    let verdicts = expect_json(
        report(&app, "gh-test-1", &github, &leak(&second)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(verdicts[0]["label"], "true_positive");
    set_tenant_disabled(None).await.expect("enable");
    assert_eq!(
        app.verify_code(second["key"].as_str().expect("key")).await,
        "revoked"
    );
    assert_eq!(revocations(&app).await, 2);
}

#[tokio::test]
async fn a_leaked_key_is_revoked_while_its_service_user_or_tenant_is_disabled_sqlite() {
    leaked_while_disabled(Engine::Sqlite).await;
}

#[tokio::test]
async fn a_leaked_key_is_revoked_while_its_service_user_or_tenant_is_disabled_postgres() {
    leaked_while_disabled(Engine::Postgres).await;
}
