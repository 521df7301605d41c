//! Real nginx (Debian's) with `auth_request` to forward-auth, configured as
//! README's recipe (`tests/support/forward_auth_nginx.conf`), in front of a
//! real upstream (a second nginx server that answers with the headers it
//! received): what reaches the upstream and what the client is told.

use std::{path::Path, process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    both_engines,
    forward_auth::PROXY_TOKEN,
    helpers::{TestApp, TestDb},
};

const NGINX: &str = "/usr/sbin/nginx";
const RECIPE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/forward_auth_nginx.conf"
);

/// nginx running the recipe, killed when dropped.
struct Nginx {
    _child: Child,
    work: tempfile::TempDir,
    /// The proxy's base URL.
    base: String,
}

impl Nginx {
    /// The recipe in front of its upstream, for the server at `keysmith`
    /// (host:port), on ports free when asked (tried again if one was taken
    /// in between).
    async fn start(keysmith: &str) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: scripts/test installs Debian's nginx"
        );
        for _ in 0..3 {
            let work = tempfile::tempdir().expect("dir");
            let (proxy, upstream) = (free_port(), free_port());
            let config = std::fs::read_to_string(RECIPE)
                .expect("recipe")
                .replace("@WORK@", work.path().to_str().expect("utf-8 path"))
                .replace("@UPSTREAM@", &upstream.to_string())
                .replace("@PROXY@", &proxy.to_string())
                .replace("@KEYSMITH@", keysmith.rsplit(':').next().expect("port"))
                .replace("@TOKEN@", PROXY_TOKEN);
            let file = work.path().join("nginx.conf");
            std::fs::write(&file, config).expect("config");
            let error_log = work.path().join("error.log");
            let child = Command::new(NGINX)
                .arg("-c")
                .arg(&file)
                .arg("-p")
                .arg(work.path())
                .arg("-e")
                .arg(&error_log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start nginx");
            let nginx = Self {
                _child: child,
                work,
                base: format!("http://127.0.0.1:{proxy}"),
            };
            if listening(proxy).await && listening(upstream).await {
                return nginx;
            }
        }
        panic!("nginx did not start on free ports three times");
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether something accepts connections on `port` within two seconds.
async fn listening(port: u16) -> bool {
    for _ in 0..40 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An MCP `tools/call` of `tool` through the proxy, as a client of
/// revision 2026-07-28 sends it (the routing headers mirror the body).
async fn call(
    nginx: &Nginx,
    key: Option<&str>,
    tool: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let mut request = reqwest::Client::new()
        .post(format!("{}/mcp", nginx.base))
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.expect("through nginx")
}

both_engines! {
    async fn nginx_auth_request_passes_valid_keys_with_their_identity_and_refuses_the_rest(app: TestApp) {
        let clock = app.clock.clone();
        let db: TestDb = app.stop().await;
        let token = [("KEYSMITH_FORWARD_AUTH_TOKEN", PROXY_TOKEN.to_owned())];
        let app = TestApp::spawn_with(db, &token, Some(clock)).await;
        let su = app.create_service_user("ci-bot").await;
        let key = app.create_key(&su, json!({"allowed_tools": ["whoami"], "rate_limit": {"per_minute": 3}})).await;
        let (id, plaintext) = (key["id"].as_str().expect("id"), key["key"].as_str().expect("key"));
        let nginx = Nginx::start(app.base.trim_start_matches("http://")).await;

        let passed = call(&nginx, Some(plaintext), "whoami", &[]).await;
        assert_eq!(passed.status(), StatusCode::OK, "{}", nginx.error_log());
        let seen: Value = passed.json().await.expect("upstream json");
        assert_eq!(seen, json!({
            "service_user": "ci-bot", "service_user_id": su, "key_id": id, "tenant": "acme",
            "role": "", "authorization": "", "proxy_token": "",
        }), "the identity reaches the upstream; the key and the proxy token do not");

        // A client's own identity headers never reach the upstream: refused
        // whole, or (spelled with `_`) dropped by nginx.
        for header in ["X-Keysmith-Tenant", "x-keysmith-service-user", "X-Keysmith-Role"] {
            let smuggled = call(&nginx, Some(plaintext), "whoami", &[(header, "globex")]).await;
            assert_eq!(smuggled.status(), StatusCode::BAD_REQUEST, "{header}");
        }
        let underscored = call(&nginx, Some(plaintext), "whoami", &[("X_Keysmith_Tenant", "globex")]).await;
        assert_eq!(underscored.status(), StatusCode::OK);
        assert_eq!(underscored.json::<Value>().await.expect("json")["tenant"], "acme");

        let anonymous = call(&nginx, None, "whoami", &[]).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer", "the challenge is passed on");
        let forged = call(&nginx, Some(&format!("{}x", &plaintext[..plaintext.len() - 1])), "whoami", &[]).await;
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

        let refused = call(&nginx, Some(plaintext), "delete_everything", &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        // The rate (3 a minute) holds through nginx: the first call and the
        // smuggling attempts were refused or counted, so count what is left.
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let answer = call(&nginx, Some(plaintext), "whoami", &[]).await;
            statuses.push((answer.status(), answer.headers().get("retry-after").cloned()));
        }
        let limited = statuses.iter().find(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
            .unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
        let retry_after: u64 = limited.1.as_ref().expect("Retry-After").to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=20).contains(&retry_after), "{retry_after}");

        let rows: Vec<(String, String)> = crate::forward_auth::audit_rows(&app, id, 9).await
            .into_iter().map(|(tool, reason, _)| (tool, reason)).collect();
        assert!(rows.contains(&("delete_everything".to_owned(), "tool_not_allowed".to_owned())), "{rows:?}");
        assert!(rows.contains(&("whoami".to_owned(), "rate_limited".to_owned())), "{rows:?}");
        assert!(rows.contains(&("whoami".to_owned(), "bad_request".to_owned())), "{rows:?}");

        // Keysmith down: fail closed.
        let db = app.stop().await;
        let down = call(&nginx, Some(plaintext), "whoami", &[]).await;
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(db);
    }
}
