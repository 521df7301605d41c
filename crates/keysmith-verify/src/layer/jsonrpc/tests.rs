//! The reader's rules, case by case (`reference_tests.rs` holds it to a
//! reference reader on generated bodies).

use serde_json::json;

use super::{strict::FEW_MEMBERS, *};

fn call(body: &str) -> Result<Message, Rejection> {
    read_message(body.as_bytes())
}

#[test]
fn reads_what_mcp_clients_send() {
    assert_eq!(
        call(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#
        ),
        Ok(Message::ToolCall {
            name: "whoami".into(),
            id: json!(7)
        })
    );
    assert_eq!(
        call(r#" {"jsonrpc":"2.0","id":"a","method":"tools/list"} "#),
        Ok(Message::Method {
            method: "tools/list".into(),
            id: json!("a"),
            addresses: None,
            uses: None,
        })
    );
    assert_eq!(
        call(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .map(|m| m.subject().to_owned()),
        Ok("notifications/initialized".into())
    );
    assert_eq!(
        call(r#"{"jsonrpc":"2.0","id":3,"result":{"roots":[]}}"#),
        Ok(Message::Response { id: json!(3) })
    );
    assert_eq!(
        call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1.5,"y":[{"z":null}],"big":9007199254740991}}}"#)
            .map(|m| m.subject().to_owned()),
        Ok("a".into())
    );
}

#[test]
fn refuses_what_another_parser_could_read_differently() {
    let refused = [
        // Not one strict JSON document.
        "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} {}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list",}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} // x"#,
        r#"{"jsonrpc":"2.0","id":NaN,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\ud800"}}"#,
        r#"{'jsonrpc':'2.0'}"#,
        "",
        // Duplicates, exact or case-folded.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"secret"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"secret"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","nAme":"secret"}}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"pass\":1,\"pa\u{17f}\u{17f}\":2}}}",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/list"}"#,
        // Numbers read differently by JavaScript and Python.
        r#"{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":123456789012345678901234567890}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}"#,
        // Not one message of the expected shape.
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
        r#""tools/call""#,
        r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"secret"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"secret"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":" tools/call","params":{"name":"secret"}}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
        r#"{"id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["secret"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["secret"]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\u0000"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
        r#"{"jsonrpc":"2.0","result":{}}"#,
    ];
    for body in refused {
        assert!(call(body).is_err(), "accepted: {body}");
    }
    let long_name = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
        "a".repeat(129)
    );
    assert!(call(&long_name).is_err());
    let long_id = format!(
        r#"{{"jsonrpc":"2.0","id":"{}","method":"tools/list"}}"#,
        "i".repeat(129)
    );
    assert!(call(&long_id).is_err());
}

#[test]
fn governed_methods_say_what_they_use() {
    let uses = |body: &str| call(body).map(|m| m.uses().cloned());
    let resource = |uri: &str| Some(Uses::Resource(Some(uri.to_owned())));
    assert_eq!(
        uses(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://a"}}"#),
        Ok(resource("test://a"))
    );
    assert_eq!(
        uses(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"t\u0065st://a"}}"#
        ),
        Ok(resource("test://a"))
    );
    assert_eq!(
        uses(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"URI":"test://a"}}"#
        ),
        Ok(Some(Uses::Resource(None))),
        "another case is not read: a limited key is refused"
    );
    assert_eq!(
        uses(
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{}}}"#
        ),
        Ok(Some(Uses::Prompt(Some("p".into()))))
    );
    assert_eq!(
        uses(
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"test://t/{x}"},"argument":{"name":"x","value":""}}}"#
        ),
        Ok(Some(Uses::Completion {
            kind: Some(REF_RESOURCE.into()),
            prompt: None,
            resource: Some("test://t/{x}".into())
        }))
    );
    assert_eq!(
        uses(
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"ref/prompt"}}"#
        ),
        Ok(Some(Uses::Completion {
            kind: None,
            prompt: None,
            resource: None
        }))
    );
    assert_eq!(
        uses(r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#),
        Ok(None)
    );
    let long = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"test://{}"}}}}"#,
        "a".repeat(2048)
    );
    for refused in [
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://a\u0000"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://a\n/../b"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":""}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"a\u007f"}}}"#,
        &long,
    ] {
        assert_eq!(
            call(refused).map_err(|r| r.code),
            Err(INVALID_PARAMS),
            "{refused}"
        );
    }
    for misspelled in [
        "Resources/Read",
        "PROMPTS/GET",
        "completion/Complete",
        "resources/SUBSCRIBE",
    ] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{misspelled}","params":{{"uri":"test://a","name":"p"}}}}"#
        );
        assert_eq!(
            call(&body).map_err(|r| r.code),
            Err(INVALID_REQUEST),
            "{misspelled}"
        );
    }
}

#[test]
fn objects_of_many_members_are_checked_like_small_ones() {
    // Either side of FEW_MEMBERS, the duplicate first, last or folded.
    for size in [1, FEW_MEMBERS - 1, FEW_MEMBERS, FEW_MEMBERS + 1, 200] {
        let members: Vec<String> = (0..size).map(|i| format!("\"pass{i}\":{i}")).collect();
        let body = |extra: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{{}{extra}}}}}}}"#,
                members.join(",")
            )
        };
        assert!(call(&body("")).is_ok(), "{size} distinct members refused");
        for duplicate in [",\"pass0\":0", ",\"PASS0\":0", ",\"pa\u{17f}\u{17f}0\":0"] {
            let last = size - 1;
            let of_last = duplicate.replace('0', &last.to_string());
            for extra in [duplicate.to_owned(), of_last] {
                assert!(
                    call(&body(&extra)).is_err(),
                    "{size} members, accepted {extra}"
                );
            }
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":{}1{}}}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // params (1), arguments (2), then the arrays.
    assert!(call(&nested(MAX_DEPTH - 3)).is_ok());
    assert!(call(&nested(MAX_DEPTH - 2)).is_err());
    assert!(call(&nested(10_000)).is_err());
    // An empty array or object one level deeper is refused alike.
    for empty in ["[]", "{}"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":{}{empty}{}}}}}}}"#,
            "[".repeat(MAX_DEPTH - 3),
            "]".repeat(MAX_DEPTH - 3)
        );
        assert!(
            call(&body).is_err(),
            "{empty} accepted at depth {MAX_DEPTH}"
        );
    }
}

#[test]
fn refusals_echo_the_id_when_it_is_readable() {
    let refusal = call(r#"{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{}}"#)
        .expect_err("refused");
    assert_eq!(refusal.id, json!("r1"));
    assert_eq!(refusal.code, -32602);
    assert_eq!(call("{").expect_err("refused").code, PARSE_ERROR);
}
