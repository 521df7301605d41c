//! The routing headers case by case, then over generated names and spellings.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::layer::jsonrpc::read_message;

fn message(body: Value) -> Message {
    read_message(body.to_string().as_bytes()).expect("a valid message")
}

fn request(method: &str, params: Value) -> Message {
    message(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
}

fn headers(pairs: &[(&HeaderName, &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            (*name).clone(),
            HeaderValue::from_bytes(value).expect("value"),
        );
    }
    headers
}

/// The verdict, and the headers that go on when accepted.
fn check(message: &Message, pairs: &[(&HeaderName, &[u8])]) -> Result<HeaderMap, Mismatch> {
    let mut headers = headers(pairs);
    check_and_normalize(&mut headers, Some(message)).map(|()| headers)
}

#[test]
fn every_method_the_revision_defines_mcp_name_for_is_checked_against_its_member() {
    let cases = [
        ("tools/call", json!({"name": "echo"}), "echo"),
        (
            "prompts/get",
            json!({"name": "test_simple_prompt"}),
            "test_simple_prompt",
        ),
        (
            "resources/read",
            json!({"uri": "test://static-text"}),
            "test://static-text",
        ),
        ("tasks/get", json!({"taskId": "t-1"}), "t-1"),
        ("tasks/update", json!({"taskId": "t-1"}), "t-1"),
        ("tasks/cancel", json!({"taskId": "t-1"}), "t-1"),
    ];
    for (method, params, addressed) in cases {
        let message = request(method, params);
        let ok = [
            (&MCP_METHOD, method.as_bytes()),
            (&MCP_NAME, addressed.as_bytes()),
        ];
        assert!(check(&message, &ok).is_ok(), "{method}");
        let wrong = [(&MCP_METHOD, method.as_bytes()), (&MCP_NAME, &b"other"[..])];
        assert!(
            check(&message, &wrong).is_err(),
            "{method} with another name"
        );
        let wrong_method = [(&MCP_METHOD, &b"tools/list"[..])];
        assert!(
            check(&message, &wrong_method).is_err(),
            "{method} under another method"
        );
    }
}

#[test]
fn mcp_name_where_the_body_vouches_for_nothing_is_refused() {
    for message in [
        // A method that defines no Mcp-Name, even with a `name` member.
        request("tools/list", json!({"name": "echo"})),
        request("resources/subscribe", json!({"uri": "test://x"})),
        // The member the method defines is missing, or another one is given.
        request("prompts/get", json!({"uri": "echo"})),
        request("resources/read", json!({"name": "echo"})),
        request("tasks/get", json!({"taskId": 7})),
        message(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        message(json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
    ] {
        assert!(
            check(&message, &[(&MCP_NAME, b"echo")]).is_err(),
            "{message:?}"
        );
    }
    let answer = message(json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
    assert!(check(&answer, &[(&MCP_METHOD, b"tools/call")]).is_err());
}

#[test]
fn absent_headers_pass_and_repeated_ones_do_not() {
    let call = request("tools/call", json!({"name": "echo"}));
    assert!(check(&call, &[]).is_ok(), "older revisions send none");
    let twice = [(&MCP_NAME, &b"echo"[..]), (&MCP_NAME, &b"echo"[..])];
    assert!(check(&call, &twice).is_err());
    let mut none = HeaderMap::new();
    none.insert(&MCP_METHOD, HeaderValue::from_static("tools/call"));
    assert!(
        check_and_normalize(&mut none, None).is_err(),
        "no body, no method"
    );
}

#[test]
fn base64_form_is_read_as_the_sdks_write_it_and_goes_on_canonical() {
    let prompt = request("prompts/get", json!({"name": "Hello"}));
    // Python SDK 2.x and the conformance suite: standard alphabet, padded.
    let accepted = check(&prompt, &[(&MCP_NAME, b"=?base64?SGVsbG8=?=")]).expect("accepted");
    assert_eq!(
        accepted[&MCP_NAME], "Hello",
        "a plain-safe name goes on plain"
    );
    for refused in [
        &b"=?base64?SGVsbG8?="[..], // padding missing
        b"=?base64?SGVs!!!bG8=?=",  // outside the alphabet
        b"=?base64?SGVsbG9=?=",     // non-zero trailing bits
        b"=?base64?SGVsbG8=",       // no end marker: the literal text
        b"=?BASE64?SGVsbG8=?=",     // markers are case-sensitive
        b"=?base64?//79?=",         // not UTF-8
    ] {
        assert!(
            check(&prompt, &[(&MCP_NAME, refused)]).is_err(),
            "{}",
            String::from_utf8_lossy(refused)
        );
    }
    let unicode = request("tools/call", json!({"name": "tööl_unicode"}));
    let spelled = format!("=?base64?{}?=", STANDARD.encode("tööl_unicode"));
    let accepted = check(&unicode, &[(&MCP_NAME, spelled.as_bytes())]).expect("accepted");
    assert_eq!(accepted[&MCP_NAME], spelled.as_str());
    assert!(
        check(&unicode, &[(&MCP_NAME, "tööl_unicode".as_bytes())]).is_err(),
        "raw UTF-8 is not a plain value: a Latin-1 reader would see another name"
    );
}

#[test]
fn surrounding_whitespace_is_not_part_of_a_value() {
    let call = request("tools/call", json!({"name": "echo"}));
    let accepted = check(&call, &[(&MCP_NAME, b" echo\t")]).expect("accepted");
    assert_eq!(accepted[&MCP_NAME], "echo");
    let spaced = request("resources/read", json!({"uri": " x "}));
    assert!(check(&spaced, &[(&MCP_NAME, b" x ")]).is_err());
    let spelled = encode(" x ");
    assert_eq!(
        spelled,
        format!("=?base64?{}?=", STANDARD.encode(" x ")).as_str()
    );
    assert!(check(&spaced, &[(&MCP_NAME, spelled.as_bytes())]).is_ok());
}

#[test]
fn a_name_that_looks_like_the_sentinel_is_encoded() {
    let text = "=?base64?SGVsbG8=?=";
    assert_ne!(encode(text), text);
    assert_eq!(decode(&encode(text)).as_deref(), Some(text));
}

#[test]
fn param_headers_pass_only_where_the_server_must_check_them() {
    let call = request(
        "tools/call",
        json!({"name": "echo", "arguments": {"region": "eu"}}),
    );
    let param = HeaderName::from_static("mcp-param-region");
    let version = HeaderName::from_static("mcp-protocol-version");
    for accepted in [&b"2026-07-28"[..], b"2027-01-01"] {
        let pairs = [(&param, &b"eu"[..]), (&version, accepted)];
        assert!(check(&call, &pairs).is_ok(), "{accepted:?}");
    }
    assert!(check(&call, &[(&param, b"eu")]).is_err(), "no version");
    for refused in [
        &b"2025-11-25"[..],
        b"2025-06-18",
        b"draft",
        b"2026-07-28x",
        b"",
    ] {
        let pairs = [(&param, &b"eu"[..]), (&version, refused)];
        assert!(check(&call, &pairs).is_err(), "{refused:?}");
    }
    let twice = [
        (&param, &b"eu"[..]),
        (&version, &b"2026-07-28"[..]),
        (&version, &b"2025-11-25"[..]),
    ];
    assert!(check(&call, &twice).is_err());
    assert!(
        check(&call, &[(&version, b"2025-11-25")]).is_ok(),
        "no Mcp-Param: nothing to check"
    );
}

/// Names near the edges of the plain form: sentinel pieces, whitespace,
/// non-ASCII, control characters.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-z_/:.]{1,6}",
        1 => Just("=?base64?".to_owned()),
        1 => Just("?=".to_owned()),
        1 => Just(" ".to_owned()),
        1 => Just("\t".to_owned()),
        1 => Just("ö".to_owned()),
        1 => Just("\u{1}".to_owned()),
        1 => Just("==".to_owned()),
    ];
    prop::collection::vec(piece, 1..5).prop_map(|pieces| pieces.concat())
}

/// How a client might spell a name: canonically, always in Base64, plain
/// whatever it holds (when a header can carry it), with whitespace around.
fn spellings(text: &str) -> Vec<Vec<u8>> {
    let mut spelled = vec![
        encode(text).as_bytes().to_vec(),
        format!("=?base64?{}?=", STANDARD.encode(text)).into_bytes(),
        format!(" {} ", encode(text).to_str().expect("ascii")).into_bytes(),
    ];
    if HeaderValue::from_bytes(text.as_bytes()).is_ok() {
        spelled.push(text.as_bytes().to_vec());
    }
    spelled
}

proptest! {
    /// Every spelling is accepted exactly when it reads as the body's name
    /// the way the Python SDK reads it, and what goes on reads as that name.
    #[test]
    fn a_spelling_passes_exactly_when_it_reads_as_the_body(body_name in text(), header_name in text()) {
        let message = request("prompts/get", json!({"name": body_name}));
        for spelled in spellings(&header_name) {
            let verdict = check(&message, &[(&MCP_NAME, &spelled)]);
            let reads_as = python_sdk_decode(&spelled);
            prop_assert_eq!(verdict.is_ok(), reads_as.as_deref() == Some(body_name.as_str()),
                "header {:?}, body {:?}", String::from_utf8_lossy(&spelled), body_name);
            if let Ok(forwarded) = verdict {
                prop_assert_eq!(decode(&forwarded[&MCP_NAME]), Some(body_name.clone()));
                prop_assert_eq!(&forwarded[&MCP_NAME], &encode(&body_name));
            }
        }
    }

    #[test]
    fn canonical_spellings_decode_to_their_text(text in text()) {
        prop_assert_eq!(decode(&encode(&text)), Some(text));
    }
}

/// `mcp.shared.inbound.decode_header_value` (PyPI `mcp` 2.3.0) after the
/// server strips the value's surrounding whitespace, refusing a plain value
/// outside visible ASCII as the layer does: sentinel by exact markers,
/// `b64decode(validate=True)`, re-encoded to compare (canonical only), UTF-8.
fn python_sdk_decode(raw: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(raw.trim_ascii()).ok()?;
    if !value.is_ascii() || value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return None;
    }
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let decoded = STANDARD.decode(payload).ok()?;
    (STANDARD.encode(&decoded) == payload).then_some(())?;
    String::from_utf8(decoded).ok()
}
