//! The OpenAPI document: valid OpenAPI 3.1 by a validator people run
//! (openapi-spec-validator from PyPI), the conventions every operation
//! keeps, and a client generated from it with openapi-typescript that
//! type-checks and then rotates and revokes a key on the live server.

use std::{path::Path, process::Command};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_engines,
    helpers::{TestApp, expect_json},
};

const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi-client");

async fn document(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi");
    expect_json(res, StatusCode::OK).await
}

/// Runs the validator on `doc`: its verdict and what it printed.
fn validate(doc: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/validate_openapi.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run the validator");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), printed)
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                found.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    found
}

/// Runs a tool to its end, without blocking the test's runtime (the server
/// under test runs on it).
async fn run_tool(program: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "{} did not start ({err}): scripts/test installs tests/openapi-client",
                program.display()
            )
        });
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{printed}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

both_engines! {
    async fn the_document_validates_and_keeps_its_conventions(app: TestApp) {
        let doc = document(&app).await;
        assert_eq!(doc["openapi"], "3.1.0");
        let (valid, printed) = validate(&doc);
        assert!(valid && printed.contains("0 errors"), "{printed}");
        // The validator can fail: a response without its description is refused.
        let mut broken = doc.clone();
        broken["paths"]["/api/v1/tenants/{tenant}/keys"]["get"]["responses"]["200"]
            .as_object_mut().expect("response").remove("description");
        let (valid, printed) = validate(&broken);
        assert!(!valid && printed.contains("description"), "{printed}");

        let mut ids = std::collections::BTreeSet::new();
        for (path, method, operation) in operations(&doc) {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            assert!(id.contains('_') && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{id} is not resource_action");
            for (status, response) in operation["responses"].as_object().expect("responses") {
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path} {status}");
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    // The OAuth endpoints answer RFC 6749's error body, but for
                    // the management key's own refusals.
                    let oauth = path.starts_with("/oauth/") && schema == "#/components/schemas/OAuthErrorBody";
                    assert!(oauth || schema == "#/components/schemas/Error", "{method} {path} {status}: {schema}");
                }
            }
            if path.starts_with("/api/v1/tenants/") {
                assert_eq!(operation["security"], json!([{"management_key": []}]), "{method} {path}");
                for status in ["401", "403", "503"] {
                    assert!(operation["responses"][status].is_object(), "{method} {path} lacks {status}");
                }
            }
        }
        assert!(ids.len() >= 30, "{ids:?}");
        assert!(doc["paths"]["/v1/revoke_tokens"]["post"].is_object(), "GitLab's revocation endpoint is described");
        for oauth in ["/oauth/{tenant}/token", "/oauth/{tenant}/introspect", "/oauth/{tenant}/revoke"] {
            let form = &doc["paths"][oauth]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"];
            assert!(form["schema"].is_object(), "{oauth} is described with its form body");
        }
        assert!(doc["paths"]["/.well-known/oauth-authorization-server/oauth/{tenant}"]["get"].is_object());
        assert!(doc["components"]["schemas"]["Error"].is_object());
    }

    async fn a_client_generated_from_it_rotates_and_revokes_a_key(app: TestApp) {
        let doc = document(&app).await;
        let base = Path::new(CLIENT_DIR);
        let dir = tempfile::Builder::new().prefix("generated-").tempdir_in(base).expect("dir");
        std::fs::write(dir.path().join("openapi.json"), doc.to_string()).expect("doc");
        std::fs::copy(base.join("client.ts"), dir.path().join("client.ts")).expect("client");
        let tsconfig = json!({"extends": "../tsconfig.json", "include": ["client.ts", "schema.d.ts"]});
        std::fs::write(dir.path().join("tsconfig.json"), tsconfig.to_string()).expect("tsconfig");
        let bin = base.join("node_modules/.bin");
        run_tool(&bin.join("openapi-typescript"), &["openapi.json", "-o", "schema.d.ts"], dir.path(), &[]).await;
        run_tool(&bin.join("tsc"), &["-p", "."], dir.path(), &[]).await;
        let su = app.create_service_user("bystander").await;
        app.create_key(&su, json!({"name": "untouched"})).await;
        let printed = run_tool(Path::new("node"), &["client.js"], dir.path(), &[
            ("KEYSMITH_URL", app.url("").as_str()),
            ("KEYSMITH_TENANT", "acme"),
            ("KEYSMITH_KEY", app.admin_key.as_str()),
        ])
        .await;
        let outcome: Value = serde_json::from_str(printed.trim()).unwrap_or_else(|_| panic!("{printed}"));
        assert_eq!(outcome["revoked"], "revoked", "{outcome}");
        assert_eq!(outcome["new_key_shown"], true);
        assert_eq!(outcome["missing"], json!([404, "not_found"]));
        let created = outcome["created"].as_str().expect("id");
        let old = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{created}")).await, StatusCode::OK).await;
        assert_eq!(old["status"], "revoked");
        let new = outcome["new"].as_str().expect("id");
        let new = expect_json(app.get(&format!("/api/v1/tenants/acme/keys/{new}")).await, StatusCode::OK).await;
        assert_eq!((new["status"].as_str(), new["allowed_tools"].clone()), (Some("active"), json!(["echo"])), "rotation kept the allowlist");
    }
}
