//! Differential fuzzing of the gateway in MCP mode. Mutated `tools/call`
//! requests (see [`case`]: body, bytes, framing, generated `Mcp-Name`,
//! `Mcp-Method` and `Mcp-Session-Id` headers) go raw through the gateway, with a key allowed
//! only `echo`, to two servers that read bodies their own way: the TS SDK
//! server (`JSON.parse` after a TextDecoder) and the careless upstream
//! (gunzip, UTF-16, `json.loads`, batches). Whatever a server ran must be a
//! tool the layer allowed and audited under the same name, for the same
//! request; `secret_admin` never runs.
//!
//! `KEYSMITH_FUZZ_CASES` (default 64 per engine) and `KEYSMITH_FUZZ_SEED`
//! (printed on failure) control the run; `scripts/fuzz` runs it long.

mod case;

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngSeed, TestRunner},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::case::{Case, Encoding, Transport, encode};
use crate::{
    both_engines,
    conformance::harness::{Gateway, Program, Upstream, key_for},
    helpers::TestApp,
};

const SERVICE_USER: &str = "fuzz-bot";
const ACCEPT: &str = "application/json, text/event-stream";
/// How long an answer may take (an SSE channel never ends).
const WAIT: Duration = Duration::from_secs(3);

/// One request as it goes on the wire (besides key, Accept and request id).
#[derive(Debug)]
struct Raw {
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    transport: Transport,
}

impl Raw {
    fn post(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            method: "POST",
            headers: vec![("content-type", content_type.to_owned())],
            body,
            transport: Transport::Reqwest,
        }
    }

    fn of(case: &Case) -> Self {
        Self {
            method: case.method,
            headers: case.headers(),
            body: case.body(),
            transport: case.transport,
        }
    }
}

/// The answer: status and (possibly still chunk-framed) body text.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// A server with a gateway in front of it.
struct Target {
    label: &'static str,
    upstream: Upstream,
    gateway: Gateway,
}

/// Everything a case needs.
struct Fuzz<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    key: String,
    targets: Vec<Target>,
    requests: u64,
    statuses: BTreeMap<(&'static str, u16), u64>,
    ran: u64,
}

impl<'a> Fuzz<'a> {
    async fn start(app: &'a TestApp) -> Self {
        let su = app.create_service_user(SERVICE_USER).await;
        let (_, key) = key_for(app, &su, "fuzz", &["echo"]).await;
        let mut targets = Vec::new();
        for (label, program) in [("ts", Program::TsServer), ("careless", Program::Careless)] {
            let upstream = Upstream::start(program).await;
            let gateway = Gateway::start(app, &upstream.base).await;
            targets.push(Target {
                label,
                upstream,
                gateway,
            });
        }
        Self {
            app,
            http: reqwest::Client::new(),
            key,
            targets,
            requests: 0,
            statuses: BTreeMap::new(),
            ran: 0,
        }
    }

    /// Sends `raw` to every target and checks the invariant for each.
    async fn attempt(&mut self, raw: &Raw) -> Result<Vec<Answer>, String> {
        let mut answers = Vec::new();
        for i in 0..self.targets.len() {
            self.requests += 1;
            let target = &self.targets[i];
            let request_id = format!("fuzz-{}-{}", self.requests, target.label);
            let (_, before) = target.upstream.ran_since(0);
            let answer = send(
                &self.http,
                &target.gateway.base,
                &self.key,
                &request_id,
                raw,
            )
            .await;
            let (ran, _) = target.upstream.ran_since(before);
            check(self.app, target.label, &request_id, &ran, &answer).await?;
            *self
                .statuses
                .entry((target.label, answer.status))
                .or_default() += 1;
            self.ran += ran.len() as u64;
            answers.push(answer);
        }
        Ok(answers)
    }
}

/// Sends one request through the gateway at `base`, by reqwest or by hand.
async fn send(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    request_id: &str,
    raw: &Raw,
) -> Answer {
    if raw.transport == Transport::Reqwest {
        let method = reqwest::Method::from_bytes(raw.method.as_bytes()).expect("method");
        let mut request = http
            .request(method, format!("{base}/mcp"))
            .bearer_auth(key)
            .header("accept", ACCEPT)
            .header("x-request-id", request_id)
            .body(raw.body.clone());
        for (name, value) in &raw.headers {
            request = request.header(*name, value);
        }
        // An answer may be a stream that stays open (a GET the server takes
        // for its SSE channel): what came within the time is the answer.
        let Ok(response) = tokio::time::timeout(WAIT, request.send()).await else {
            return Answer {
                status: 0,
                body: "(no answer in time)".into(),
            };
        };
        let response = response.expect("gateway answers");
        let status = response.status().as_u16();
        let body = tokio::time::timeout(WAIT, response.text())
            .await
            .map_or_else(|_| "(still streaming)".into(), Result::unwrap_or_default);
        return Answer { status, body };
    }
    let host = base.trim_start_matches("http://");
    let mut head = format!(
        "{} /mcp HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\naccept: {ACCEPT}\r\nx-request-id: {request_id}\r\nconnection: close\r\n",
        raw.method
    );
    for (name, value) in &raw.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = Vec::new();
    if raw.transport == Transport::RawChunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        bytes.extend(head.as_bytes());
        for chunk in raw.body.chunks(7) {
            bytes.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend(chunk);
            bytes.extend(b"\r\n");
        }
        bytes.extend(b"0\r\n\r\n");
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", raw.body.len()));
        bytes.extend(head.as_bytes());
        bytes.extend(&raw.body);
    }
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream.write_all(&bytes).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Answer { status, body }
}

/// The invariant for one request: what ran upstream was allowed and
/// audited under that name (rows may still be in the writer's queue: poll).
async fn check(
    app: &TestApp,
    label: &str,
    request_id: &str,
    ran: &[(String, String)],
    answer: &Answer,
) -> Result<(), String> {
    let said = || format!("(HTTP {}: {})", answer.status, answer.body);
    if ran.iter().any(|(tool, _)| tool.contains("secret_admin")) {
        return Err(format!(
            "{label}: secret_admin RAN upstream: {ran:?} {}",
            said()
        ));
    }
    if let Some((tool, user)) = ran.iter().find(|(_, user)| user != SERVICE_USER) {
        return Err(format!(
            "{label}: {tool} ran without the injected identity (saw {user}) {}",
            said()
        ));
    }
    // Nothing the key may not call is named in a success: no tools/list
    // (the mutations turn calls into lists) shows the refused tool.
    if (200..300).contains(&answer.status) && answer.body.contains("secret_admin") {
        return Err(format!(
            "{label}: a successful answer names secret_admin {}",
            said()
        ));
    }
    let mut need: HashMap<&str, usize> = HashMap::new();
    for (tool, _) in ran {
        *need.entry(tool.as_str()).or_default() += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let audited = allowed_rows(app, request_id).await;
        let short = need
            .iter()
            .any(|(tool, n)| audited.get(*tool).copied().unwrap_or(0) < *n);
        if !short {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{label}: ran {ran:?} but the allowed audit rows of {request_id} are {audited:?} {}",
                said()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Allowed gateway audit rows per tool for requests whose id matches `pattern` (SQL LIKE).
async fn allowed_rows(app: &TestApp, pattern: &str) -> HashMap<String, usize> {
    let rows: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT tool FROM audit_events WHERE request_id LIKE $1 AND action = 'tool.call' AND outcome = 'allowed'",
    )
    .bind(pattern)
    .fetch_all(app.state.pool())
    .await
    .expect("audit rows");
    let mut counts = HashMap::new();
    for (tool,) in rows {
        *counts.entry(tool.unwrap_or_default()).or_default() += 1;
    }
    counts
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs the property, shrinking the first failure to a minimal case.
async fn differential(app: &TestApp) {
    let cases = env_number("KEYSMITH_FUZZ_CASES").unwrap_or(64);
    let seed = env_number("KEYSMITH_FUZZ_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        now.as_nanos() as u64
    });
    let mut fuzz = Fuzz::start(app).await;
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    let strategy = case::strategy();
    for n in 0..cases {
        let mut tree = strategy.new_tree(&mut runner).expect("a case");
        let Err(failure) = fuzz.attempt(&Raw::of(&tree.current())).await else {
            continue;
        };
        let mut minimal = (tree.current(), failure);
        let mut budget = 300;
        let mut more = tree.simplify();
        while more && budget > 0 {
            budget -= 1;
            match fuzz.attempt(&Raw::of(&tree.current())).await {
                Err(failure) => {
                    minimal = (tree.current(), failure);
                    more = tree.simplify();
                }
                Ok(_) => more = tree.complicate(),
            }
        }
        let (case, failure) = minimal;
        panic!(
            "\n*** LAYER/GATEWAY DEFECT: fuzz case {n} (KEYSMITH_FUZZ_SEED={seed}) broke the invariant\n{failure}\n\
             minimal case: {case:#?}\nheaders: {:?}\nbody: {:?}\n",
            case.headers(),
            String::from_utf8_lossy(&case.body())
        );
    }
    // After the writer's last flush: every run upstream, over the whole
    // run, against every allowed row (catches a tool run after its answer).
    let Fuzz {
        targets,
        statuses,
        ran,
        ..
    } = fuzz;
    for Target {
        label,
        upstream,
        gateway,
    } in targets
    {
        gateway.stop().await;
        let audited = allowed_rows(app, &format!("fuzz-%-{label}")).await;
        let mut ran_upstream: HashMap<String, usize> = HashMap::new();
        for (tool, _) in upstream.ran() {
            *ran_upstream.entry(tool).or_default() += 1;
        }
        for (tool, n) in &ran_upstream {
            assert!(
                audited.get(tool).copied().unwrap_or(0) >= *n,
                "{label}: {tool} ran {n} times; allowed audit rows: {audited:?}"
            );
        }
    }
    eprintln!("fuzz statuses (server, HTTP status): {statuses:?}; tools run upstream: {ran}");
    eprintln!("fuzz cases: {cases} (seed {seed})");
}

/// The issue's case and the other known ways around a body reader: each
/// refused at the gateway, run nowhere; and a plain call still works.
async fn regressions(app: &TestApp) {
    let mut fuzz = Fuzz::start(app).await;
    let call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{"text":"hi"}}}}}}"#
        )
    };
    let secret = call("secret_admin");
    let refused: Vec<(&str, Raw, u16)> = vec![
        (
            "the original issue: Content-Type: Application/JSON",
            Raw::post("Application/JSON", secret.clone().into_bytes()),
            403,
        ),
        (
            "duplicate name",
            Raw::post(
                "application/json",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"secret_admin"}}"#.into(),
            ),
            400,
        ),
        (
            "case-folded duplicate name",
            Raw::post(
                "application/json",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"secret_admin"}}"#.into(),
            ),
            400,
        ),
        (
            "Method vs method",
            Raw::post(
                "application/json",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"secret_admin"}}"#.into(),
            ),
            400,
        ),
        (
            "UTF-16 body with BOM",
            Raw::post(
                "application/json",
                encode(Encoding::Utf16Le { bom: true }, &secret),
            ),
            400,
        ),
        (
            "UTF-16 body without BOM, charset=utf-16",
            Raw::post(
                "application/json; charset=utf-16",
                encode(Encoding::Utf16Le { bom: false }, &secret),
            ),
            400,
        ),
        (
            "UTF-8 BOM",
            Raw::post("application/json", encode(Encoding::Utf8Bom, &secret)),
            400,
        ),
        (
            "gzip body",
            Raw {
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    ("content-encoding", "gzip".to_owned()),
                ],
                ..Raw::post("", encode(Encoding::Gzip("gzip"), &secret))
            },
            400,
        ),
        (
            "deflate body",
            Raw {
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    ("content-encoding", "deflate".to_owned()),
                ],
                ..Raw::post("", encode(Encoding::Deflate("deflate"), &secret))
            },
            400,
        ),
    ];
    for (what, raw, status) in &refused {
        let answers = fuzz
            .attempt(raw)
            .await
            .unwrap_or_else(|failure| panic!("\n*** LAYER/GATEWAY DEFECT: {what}: {failure}\n"));
        for (target, answer) in fuzz.targets.iter().zip(&answers) {
            assert_eq!(
                answer.status, *status,
                "{what} via {}: {}",
                target.label, answer.body
            );
            if *status == 403 {
                assert!(
                    answer.body.contains("secret_admin"),
                    "{what}: {}",
                    answer.body
                );
            }
        }
    }
    for target in &fuzz.targets {
        assert_eq!(
            target.upstream.ran(),
            vec![],
            "{}: nothing ran",
            target.label
        );
    }

    // The control: the same spelling with an allowed tool goes through and runs.
    let answers = fuzz
        .attempt(&Raw::post("Application/JSON", call("echo").into_bytes()))
        .await
        .expect("echo");
    for (target, answer) in fuzz.targets.iter().zip(&answers) {
        assert_eq!(answer.status, 200, "{}: {}", target.label, answer.body);
        assert_eq!(
            target.upstream.ran(),
            vec![("echo".to_owned(), SERVICE_USER.to_owned())],
            "{}",
            target.label
        );
    }

    // The audit, flushed: the control allowed, the issue's call denied.
    for target in fuzz.targets {
        target.gateway.stop().await;
    }
    let rows: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT tool, outcome, reason FROM audit_events WHERE request_id LIKE 'fuzz-%' AND action = 'tool.call' ORDER BY id",
    )
    .fetch_all(app.state.pool())
    .await
    .expect("audit rows");
    let allowed: Vec<_> = rows.iter().filter(|r| r.1 == "allowed").collect();
    assert_eq!(
        allowed.len(),
        2,
        "only the two echo calls were allowed: {rows:?}"
    );
    assert!(
        allowed.iter().all(|r| r.0.as_deref() == Some("echo")),
        "{rows:?}"
    );
    let denied = rows
        .iter()
        .filter(|r| r.1 == "denied" && r.0.as_deref() == Some("secret_admin"))
        .count();
    assert_eq!(
        denied, 2,
        "the issue's call is audited as refused, once per gateway: {rows:?}"
    );
}

both_engines! {
    async fn differential_tools_call(app: TestApp) {
        differential(&app).await;
    }

    async fn fixed_regressions(app: TestApp) {
        regressions(&app).await;
    }
}
