//! Real proxies (Debian's nginx and Caddy) asking forward-auth, configured
//! as the book's recipes (docs/src/forward-auth.md) (`tests/support/forward_auth_nginx.conf`,
//! `tests/support/forward_auth.Caddyfile`), in front of a real upstream (a
//! second server of the same proxy that answers with the headers it
//! received): what reaches the upstream and what the client is told.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::{
    both_engines,
    forward_auth::PROXY_TOKEN,
    helpers::{TestApp, TestDb},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Self::Nginx => "/usr/sbin/nginx",
            Self::Caddy => "/usr/bin/caddy",
        }
    }

    fn recipe(self) -> &'static str {
        match self {
            Self::Nginx => concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/forward_auth_nginx.conf"
            ),
            Self::Caddy => concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/forward_auth.Caddyfile"
            ),
        }
    }

    fn command(self, work: &Path, config: &Path) -> Command {
        let mut command = Command::new(self.binary());
        match self {
            Self::Nginx => {
                command
                    .arg("-c")
                    .arg(config)
                    .arg("-p")
                    .arg(work)
                    .arg("-e")
                    .arg(work.join("error.log"));
            }
            Self::Caddy => {
                command
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(config)
                    // Caddy keeps its state under the home directory.
                    .env("HOME", work)
                    .env("XDG_DATA_HOME", work)
                    .env("XDG_CONFIG_HOME", work)
                    .env("KEYSMITH_FORWARD_AUTH_TOKEN", PROXY_TOKEN);
            }
        }
        command
    }
}

/// A proxy running its recipe, killed when dropped.
struct Proxy {
    _child: Child,
    work: tempfile::TempDir,
    /// The proxy's base URL.
    base: String,
}

impl Proxy {
    /// `kind`'s recipe in front of its upstream, for the server on
    /// `keysmith_port`, on ports free when asked (tried again if one was
    /// taken in between).
    async fn start(kind: Kind, keysmith_port: u16) -> Self {
        assert!(
            Path::new(kind.binary()).exists(),
            "{} is missing: scripts/test installs Debian's nginx and caddy",
            kind.binary()
        );
        for _ in 0..3 {
            let work = tempfile::tempdir().expect("dir");
            let (proxy, upstream) = (free_port(), free_port());
            let config = std::fs::read_to_string(kind.recipe())
                .expect("recipe")
                .replace("@WORK@", work.path().to_str().expect("utf-8 path"))
                .replace("@UPSTREAM@", &upstream.to_string())
                .replace("@PROXY@", &proxy.to_string())
                .replace("@KEYSMITH@", &keysmith_port.to_string())
                .replace("@TOKEN@", PROXY_TOKEN);
            let file = work.path().join("proxy.conf");
            std::fs::write(&file, config).expect("config");
            let log = std::fs::File::create(work.path().join("output.log")).expect("log");
            let child = kind
                .command(work.path(), &file)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("start the proxy");
            let running = Self {
                _child: child,
                work,
                base: format!("http://127.0.0.1:{proxy}"),
            };
            if listening(proxy).await && listening(upstream).await {
                return running;
            }
        }
        panic!("{kind:?} did not start on free ports three times");
    }

    fn logs(&self) -> String {
        ["error.log", "output.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.work.path().join(f)).ok())
            .collect()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether something accepts connections on `port` within three seconds.
async fn listening(port: u16) -> bool {
    for _ in 0..60 {
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
    proxy: &Proxy,
    key: Option<&str>,
    tool: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let mut request = reqwest::Client::new()
        .post(format!("{}/mcp", proxy.base))
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.expect("through the proxy")
}

/// What the upstream was told: its `name=value` answer.
async fn upstream_saw(response: reqwest::Response) -> BTreeMap<String, String> {
    let text = response.text().await.expect("upstream answer");
    text.split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The recipe of `kind` in front of its upstream, against a server that
/// requires the proxy token: every answer the book promises.
async fn recipe_holds(app: TestApp, kind: Kind) {
    let clock = app.clock.clone();
    let db: TestDb = app.stop().await;
    let token = [("KEYSMITH_FORWARD_AUTH_TOKEN", PROXY_TOKEN.to_owned())];
    let app = TestApp::spawn_with(db, &token, Some(clock)).await;
    let su = app.create_service_user("ci-bot").await;
    let key = app
        .create_key(
            &su,
            json!({"allowed_tools": ["whoami"], "rate_limit": {"per_minute": 3}}),
        )
        .await;
    let (id, plaintext) = (
        key["id"].as_str().expect("id"),
        key["key"].as_str().expect("key"),
    );
    let port: u16 = app
        .base
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    let proxy = Proxy::start(kind, port).await;

    let passed = call(&proxy, Some(plaintext), "whoami", &[]).await;
    assert_eq!(passed.status(), StatusCode::OK, "{}", proxy.logs());
    let expected: BTreeMap<String, String> = [
        ("service_user", "ci-bot"),
        ("service_user_id", su.as_str()),
        ("key_id", id),
        ("tenant", "acme"),
        ("role", ""),
        ("authorization", ""),
        ("proxy_token", ""),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        upstream_saw(passed).await,
        expected,
        "the identity reaches the upstream; the key and the proxy token do not"
    );

    // A client's own identity headers never reach the upstream: refused
    // whole by Keysmith, which the proxy forwards them to.
    for header in [
        "X-Keysmith-Tenant",
        "x-keysmith-service-user",
        "X-Keysmith-Role",
    ] {
        let smuggled = call(&proxy, Some(plaintext), "whoami", &[(header, "globex")]).await;
        assert_eq!(
            smuggled.status(),
            StatusCode::BAD_REQUEST,
            "{kind:?} {header}"
        );
    }
    // Spelled with `_`: nginx drops such headers, Caddy forwards them (refused).
    let underscored = call(
        &proxy,
        Some(plaintext),
        "whoami",
        &[("X_Keysmith_Tenant", "globex")],
    )
    .await;
    match kind {
        Kind::Nginx => {
            assert_eq!(underscored.status(), StatusCode::OK);
            assert_eq!(upstream_saw(underscored).await["tenant"], "acme");
        }
        Kind::Caddy => assert_eq!(underscored.status(), StatusCode::BAD_REQUEST),
    }

    let anonymous = call(&proxy, None, "whoami", &[]).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer",
        "the challenge is passed on"
    );
    let forged = format!("{}x", &plaintext[..plaintext.len() - 1]);
    let forged = call(&proxy, Some(&forged), "whoami", &[]).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let refused = call(&proxy, Some(plaintext), "delete_everything", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The rate (3 a minute, the test's clock standing still) holds through
    // the proxy: the calls that passed so far counted, so one of the next
    // three at most passes before the 429.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let answer = call(&proxy, Some(plaintext), "whoami", &[]).await;
        answers.push((
            answer.status(),
            answer.headers().get("retry-after").cloned(),
        ));
    }
    let limited = answers
        .iter()
        .find(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(|| panic!("no 429 in {answers:?}"));
    let retry_after: u64 = limited
        .1
        .as_ref()
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry_after), "{retry_after}");

    let rows: Vec<(String, String)> = crate::forward_auth::audit_rows(&app, id, 9)
        .await
        .into_iter()
        .map(|(tool, reason, _)| (tool, reason))
        .collect();
    for expected in [
        ("whoami", "valid"),
        ("delete_everything", "tool_not_allowed"),
        ("whoami", "rate_limited"),
        ("whoami", "bad_request"),
    ] {
        assert!(
            rows.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {rows:?}"
        );
    }

    // Keysmith down: the proxy refuses, never passes.
    let _db = app.stop().await;
    let down = call(&proxy, Some(plaintext), "whoami", &[]).await;
    assert!(
        [StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE].contains(&down.status()),
        "{kind:?}: {}",
        down.status()
    );
}

both_engines! {
    async fn nginx_auth_request_passes_valid_keys_with_their_identity_and_refuses_the_rest(app: TestApp) {
        recipe_holds(app, Kind::Nginx).await;
    }

    async fn caddy_forward_auth_passes_valid_keys_with_their_identity_and_refuses_the_rest(app: TestApp) {
        recipe_holds(app, Kind::Caddy).await;
    }
}
