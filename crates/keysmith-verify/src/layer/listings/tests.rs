//! The listing filter on JSON and event-stream answers.

use super::*;
use crate::{allowlist::Allowlist, timestamp};
use http_body_util::{BodyExt, StreamBody};

/// A key with these lists (empty: not named).
fn with(tools: &[&str], resources: &[&str], prompts: &[&str]) -> Arc<VerifiedKey> {
    fn list<P: crate::allowlist::Pattern>(entries: &[&str]) -> Allowlist<P> {
        if entries.is_empty() {
            Allowlist::any()
        } else {
            Allowlist::from_list(entries).expect("valid")
        }
    }
    Arc::new(VerifiedKey {
        key_id: "k".into(),
        tenant_id: "t".into(),
        tenant_slug: "t".into(),
        service_user_id: "s".into(),
        service_user_name: "s".into(),
        valid_until: timestamp::from_unix(4_000_000_000),
        scopes: vec![],
        allowed: Capabilities::new(list(tools), list(resources), list(prompts)),
        limits: Default::default(),
        token: None,
    })
}

fn only(tools: &[&str]) -> Arc<VerifiedKey> {
    with(tools, &[], &[])
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"secret_admin"},{"name":"files/read"}]}}"#;

async fn run(chunks: Vec<&'static [u8]>, format: Format, allow: &Arc<VerifiedKey>) -> String {
    let frames = chunks
        .into_iter()
        .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(c))));
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let filter = FilteredBody::new(body, allow.clone(), format, Value::from(1));
    let bytes = filter.collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn json_answers_keep_only_allowed_tools() {
    let out = run(
        vec![&LIST.as_bytes()[..40], &LIST.as_bytes()[40..]],
        Format::Json,
        &only(&["echo", "files/*"]),
    )
    .await;
    let value: Value = serde_json::from_str(&out).expect("json");
    let names: Vec<&str> = value["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["echo", "files/read"]);
    let unreadable = run(vec![b"<html>tools</html>"], Format::Json, &only(&["echo"])).await;
    assert!(unreadable.contains("-32603"), "{unreadable}");
    assert!(!unreadable.contains("tools</html>"));
}

#[tokio::test]
async fn events_are_filtered_one_by_one_whatever_the_line_endings() {
    let allow = only(&["echo"]);
    let stream: &'static str = "event: message\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n: keep-alive\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\r\ndata: \"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"secret_admin\"}]}}\r\rdata: not json secret_admin\n\n";
    let bytes = stream.as_bytes();
    // Split everywhere, including between a CR and its LF.
    for at in 1..bytes.len() {
        let (a, b) = bytes.split_at(at);
        let a: &'static [u8] = a;
        let b: &'static [u8] = b;
        let out = run(vec![a, b], Format::EventStream, &allow).await;
        assert!(!out.contains("secret_admin"), "split at {at}: {out}");
        assert!(out.contains(r#"{"name":"echo"}"#), "split at {at}: {out}");
        assert!(
            out.contains("notifications/progress"),
            "split at {at}: {out}"
        );
        assert!(
            out.contains("event: message\nid: 7\n"),
            "split at {at}: {out}"
        );
        assert!(out.contains(": keep-alive\n\n"), "split at {at}: {out}");
    }
}

/// The names (or URIs) a listing kept.
fn kept(answer: &str, listing: &str, named_by: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(answer).expect("json");
    value["result"][listing]
        .as_array()
        .expect(listing)
        .iter()
        .filter_map(|entry| entry[named_by].as_str().map(str::to_owned))
        .collect()
}

const EVERY_LISTING: &str = r#"{"jsonrpc":"2.0","id":1,"result":{
    "tools":[{"name":"echo"}],
    "prompts":[{"name":"greet"},{"name":"admin_prompt"},{"title":"no name"}],
    "resources":[{"uri":"file:///public/a.txt"},{"uri":"file:///public/../secret"},{"uri":"file:///secret"},{"uri":"file:///public/b","URI":"file:///secret"}],
    "resourceTemplates":[{"uriTemplate":"file:///public/{name}"},{"uriTemplate":"file:///{path}"},{"uriTemplate":"file:///public/{a}/../x"}]}}"#;

#[tokio::test]
async fn every_listing_keeps_only_what_the_key_may_use() {
    let key = with(&[], &["file:///public/*"], &["greet"]);
    let out = run(vec![EVERY_LISTING.as_bytes()], Format::Json, &key).await;
    assert_eq!(
        kept(&out, "tools", "name"),
        Vec::<String>::new(),
        "no tool named: none listed"
    );
    assert_eq!(kept(&out, "prompts", "name"), ["greet"]);
    assert_eq!(kept(&out, "resources", "uri"), ["file:///public/a.txt"]);
    assert_eq!(
        kept(&out, "resourceTemplates", "uriTemplate"),
        ["file:///public/{name}"]
    );

    // A key that names only tools sees no resource, template or prompt.
    let tools_only = run(
        vec![EVERY_LISTING.as_bytes()],
        Format::Json,
        &only(&["echo"]),
    )
    .await;
    assert_eq!(kept(&tools_only, "tools", "name"), ["echo"]);
    for (listing, named_by) in [
        ("prompts", "name"),
        ("resources", "uri"),
        ("resourceTemplates", "uriTemplate"),
    ] {
        assert!(
            kept(&tools_only, listing, named_by).is_empty(),
            "{listing}: {tools_only}"
        );
    }
    // Member names in another case are listings too.
    let folded = r#"{"jsonrpc":"2.0","id":1,"Result":{"Resources":[{"uri":"file:///secret"}],"PROMPTS":[{"name":"x"}]}}"#;
    let out = run(vec![folded.as_bytes()], Format::Json, &key).await;
    assert!(!out.contains("secret") && !out.contains(r#""x""#), "{out}");
}
