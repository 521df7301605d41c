//! The reader held to a reference that builds the whole tree first (the
//! reader before bodies were skimmed), on generated bodies.

use proptest::{prelude::*, strategy::ValueTree};
use serde::de::DeserializeSeed;
use serde_json::Value;

use super::{strict::Strict, *};

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
