//! The reader's rules, case by case, and the reader held to a reference that
//! builds the whole tree first (the reader before bodies were skimmed) on
//! generated bodies.

use proptest::{prelude::*, strategy::ValueTree};
use serde::de::DeserializeSeed;
use serde_json::{Value, json};

use super::{
    strict::{FEW_MEMBERS, Strict},
    *,
};

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

/// The reader before bodies were skimmed: the whole body built as a tree
/// under the same strict rule, then judged member by member.
fn reference(body: &[u8]) -> Result<Message, Rejection> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = Strict { depth: 0 }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    let value = parsed.map_err(|_| Rejection {
        code: PARSE_ERROR,
        message: NOT_STRICT_JSON,
        id: Value::Null,
    })?;
    let Value::Object(message) = value else {
        return Err(Rejection::invalid(
            "the body must be one JSON-RPC message object (batches are not accepted)",
            &Value::Null,
        ));
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if !valid_id(&id) {
        return Err(Rejection::invalid(
            "id must be a string of at most 128 bytes or a safe integer",
            &Value::Null,
        ));
    }
    // A refusal from here on echoes the (valid) id.
    let echo = &id;
    if message
        .keys()
        .any(|k| !["jsonrpc", "id", "method", "params", "result", "error"].contains(&k.as_str()))
    {
        return Err(Rejection::invalid(
            "unknown member in a JSON-RPC message",
            echo,
        ));
    }
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Rejection::invalid("jsonrpc must be \"2.0\"", echo));
    }
    let Some(method) = message.get("method") else {
        let is_response = message.contains_key("result") ^ message.contains_key("error");
        return if is_response && !message.contains_key("params") && !id.is_null() {
            Ok(Message::Response { id })
        } else {
            Err(Rejection::invalid(
                "a message needs a method, or an id with exactly one of result and error",
                echo,
            ))
        };
    };
    if message.contains_key("result") || message.contains_key("error") {
        return Err(Rejection::invalid(
            "a request cannot carry result or error",
            echo,
        ));
    }
    let Some(method) = method.as_str().filter(|m| valid_method(m)) else {
        return Err(Rejection::invalid(
            "method must be 1-128 characters of A-Z a-z 0-9 / _ . : - $",
            echo,
        ));
    };
    let params = match message.get("params") {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => return Err(Rejection::invalid("params must be an object", echo)),
    };
    if method != TOOLS_CALL {
        if misspelled_governed(method) {
            return Err(Rejection::invalid(
                "tools/call, resources/*, prompts/get and completion/complete must be spelled exactly",
                echo,
            ));
        }
        fn string(value: Option<&Value>) -> Option<&str> {
            value.and_then(Value::as_str)
        }
        let member = |name: &str| string(params.and_then(|p| p.get(name)));
        let reference = params
            .and_then(|p| p.get("ref"))
            .and_then(Value::as_object)
            .map(|r| {
                [
                    string(r.get("type")),
                    string(r.get("name")),
                    string(r.get("uri")),
                ]
            });
        let named = Named {
            name: member("name"),
            uri: member("uri"),
            reference,
        };
        let uses = uses_of(method, named).map_err(|message| Rejection {
            code: INVALID_PARAMS,
            message,
            id: id.clone(),
        })?;
        let addresses = AddressedMember::of(method)
            .and_then(|addressed| member(addressed.json_name()))
            .map(ToOwned::to_owned);
        return Ok(Message::Method {
            method: method.to_owned(),
            id,
            addresses,
            uses,
        });
    }
    match params.and_then(|p| p.get("name")) {
        Some(Value::String(name)) if valid_tool_name(name) => Ok(Message::ToolCall {
            name: name.clone(),
            id,
        }),
        _ => Err(Rejection {
            code: -32602,
            message: "tools/call needs params.name: a string of 1-128 characters without control characters",
            id,
        }),
    }
}

/// Member names as JSON text: the six of a message, `params.name`, near
/// misses in case or by folding, and escaped spellings of real ones.
const NAMES: [&str; 16] = [
    r#""jsonrpc""#,
    r#""id""#,
    r#""method""#,
    r#""params""#,
    r#""result""#,
    r#""error""#,
    r#""name""#,
    r#""arguments""#,
    r#""Method""#,
    r#""nAme""#,
    r#""ID""#,
    "\"pa\u{17f}\u{17f}\"",
    r#""pass""#,
    r#""n\u0061me""#,
    r#""meth\u006fd""#,
    r#""x""#,
];

/// Values as JSON text that every reader takes, most of them meaningful
/// somewhere in a message.
const PLAIN: [&str; 15] = [
    r#""2.0""#,
    r#""1.0""#,
    r#""tools/call""#,
    r#""tools/list""#,
    r#""TOOLS/CALL""#,
    r#"" tools/call""#,
    r#""echo""#,
    r#""""#,
    r#""e\u0063ho""#,
    "1",
    "-7",
    "1.5",
    "null",
    "true",
    "{}",
];

/// Values the strict rule refuses, or takes only at the edge of a limit.
const EDGES: [&str; 11] = [
    r#""a\u0000""#,
    r#""\ud800""#,
    "9007199254740991",
    "9007199254740992",
    "-9007199254740993",
    "123456789012345678901234567890",
    "1e400",
    "2e20",
    "[]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
];

fn object(members: &[(String, String)]) -> String {
    let members: Vec<String> = members.iter().map(|(n, v)| format!("{n}:{v}")).collect();
    format!("{{{}}}", members.join(","))
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![6 => one_of(&PLAIN), 1 => one_of(&EDGES)];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((name(), inner), 0..5).prop_map(|m| object(&m)),
        ]
    })
}

/// `member: value`, present four times in five, the value mostly one of
/// `likely`.
fn member(
    name: &'static str,
    likely: impl Strategy<Value = String>,
) -> impl Strategy<Value = Option<(String, String)>> {
    prop::option::weighted(0.8, prop_oneof![4 => likely, 1 => value()])
        .prop_map(move |v| v.map(|v| (format!("\"{name}\""), v)))
}

/// An object of the members present and `extra`, in any order.
fn shuffled(
    members: Vec<Option<(String, String)>>,
    extra: Vec<(String, String)>,
) -> impl Strategy<Value = String> {
    let members: Vec<_> = members.into_iter().flatten().chain(extra).collect();
    Just(members)
        .prop_shuffle()
        .prop_map(|members| object(&members))
}

fn one_of(texts: &[&'static str]) -> impl Strategy<Value = String> + use<> {
    prop::sample::select(texts.to_vec()).prop_map(str::to_owned)
}

/// `params`: mostly an object with a tool name under `name` (or what
/// another method addresses: `uri`, `taskId`), sometimes under a near miss
/// or an escaped spelling, or with none.
fn params() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        9 => Just(r#""name""#.to_owned()),
        1 => one_of(&[r#""uri""#, r#""taskId""#]),
        1 => one_of(&[r#""nAme""#, r#""n\u0061me""#, r#""NAME""#, r#""taskid""#]),
    ];
    let tool = one_of(&[r#""echo""#, r#""secret""#, r#""e\u0063ho""#, r#""""#, "7"]);
    // A completion's `ref` (or a near miss), or a URI with a control character.
    let reference = (
        member("type", one_of(&[r#""ref/prompt""#, r#""ref/resource""#])),
        member("name", one_of(&[r#""echo""#, r#""secret""#])),
        member(
            "uri",
            one_of(&[r#""test://a""#, r#""test://\u0000""#, r#""""#]),
        ),
        prop::collection::vec((name(), value()), 0..2),
    )
        .prop_flat_map(|(kind, name, uri, extra)| shuffled(vec![kind, name, uri], extra));
    let other = prop_oneof![
        (one_of(&[r#""ref""#, r#""Ref""#]), reference),
        (
            Just(r#""uri""#.to_owned()),
            Just(r#""test://a\u0007""#.to_owned())
        ),
    ];
    let addressed = prop_oneof![20 => (key, tool), 1 => other];
    let extra = prop::collection::vec((name(), value()), 0..3);
    (prop::option::weighted(0.9, addressed), extra).prop_map(|(tool, extra)| {
        let members: Vec<_> = tool.into_iter().chain(extra).collect();
        object(&members)
    })
}

/// A body: mostly a request or an answer built from the members a real one has, with
/// changes (members missing, other values, extra or near-miss members, any
/// order), sometimes any JSON value; one byte in five bodies inserted,
/// deleted or replaced.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let members = (
        member("jsonrpc", one_of(&[r#""2.0""#])),
        member("id", one_of(&["1", r#""r1""#, "null"])),
        member(
            "method",
            prop_oneof![
                6 => one_of(&[
                    r#""tools/call""#,
                    r#""tools/list""#,
                    r#""notifications/initialized""#,
                ]),
                1 => one_of(&[
                    r#""prompts/get""#,
                    r#""resources/read""#,
                    r#""resources/subscribe""#,
                    r#""completion/complete""#,
                    r#""Resources/Read""#,
                    r#""tasks/get""#,
                ]),
            ],
        ),
        member("params", params()),
        prop::option::weighted(0.15, value()).prop_map(|v| v.map(|v| (r#""result""#.into(), v))),
        prop::collection::vec((name(), value()), 0..2),
    )
        .prop_flat_map(|(jsonrpc, id, method, params, result, extra)| {
            shuffled(vec![jsonrpc, id, method, params, result], extra)
        });
    let answer = (
        member("jsonrpc", one_of(&[r#""2.0""#])),
        member("id", one_of(&["1", r#""r1""#])),
        prop::option::weighted(0.5, value()).prop_map(|v| v.map(|v| (r#""result""#.into(), v))),
        prop::option::weighted(0.5, value()).prop_map(|v| v.map(|v| (r#""error""#.into(), v))),
        prop::collection::vec((name(), value()), 0..2),
    )
        .prop_map(|(jsonrpc, id, result, error, extra)| {
            let members: Vec<_> = [jsonrpc, id, result, error]
                .into_iter()
                .flatten()
                .chain(extra)
                .collect();
            object(&members)
        });
    let text = prop_oneof![6 => members, 2 => answer, 1 => value()];
    let mutation = prop::option::weighted(0.2, (0..3u8, any::<prop::sample::Index>(), any::<u8>()));
    (text, mutation).prop_map(|(text, mutation)| {
        let mut bytes = text.into_bytes();
        if let Some((kind, at, byte)) = mutation {
            let at = at.index(bytes.len());
            match kind {
                0 => bytes.insert(at, byte),
                1 => drop(bytes.remove(at)),
                _ => bytes[at] = byte,
            }
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn gives_the_verdicts_of_the_reader_that_builds_the_tree(body in body()) {
        prop_assert_eq!(read_message(&body), reference(&body), "body: {}", String::from_utf8_lossy(&body));
    }
}

/// The generator reaches every verdict often enough for the comparison
/// above to mean something (it is not all parse errors).
#[test]
fn generated_bodies_reach_every_verdict() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = body();
    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..8192 {
        let body = strategy
            .new_tree(&mut runner)
            .expect("a generated body")
            .current();
        let verdict = match read_message(&body) {
            Ok(Message::ToolCall { .. }) => "tool call".to_owned(),
            Ok(Message::Method { uses: Some(_), .. }) => "governed method".to_owned(),
            Ok(Message::Method { .. }) => "method".to_owned(),
            Ok(Message::Response { .. }) => "response".to_owned(),
            Err(rejection) => rejection.message.to_owned(),
        };
        *verdicts.entry(verdict).or_default() += 1;
    }
    for kind in ["tool call", "method", "response", NOT_STRICT_JSON] {
        assert!(
            verdicts.get(kind).copied().unwrap_or(0) >= 20,
            "{kind} too rare: {verdicts:#?}"
        );
    }
    // Every rejection the reader can give, but the rare "spelled exactly".
    assert!(verdicts.len() >= 13, "{verdicts:#?}");
    assert!(verdicts.contains_key("governed method"), "{verdicts:#?}");
}
