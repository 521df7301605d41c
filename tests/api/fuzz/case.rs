//! What the differential fuzzer sends: a `tools/call`, then mutated in its
//! text (whitespace, `\u` escapes, numbers, duplicate members, nesting,
//! batches), its bytes (BOM, UTF-16, gzip, deflate) and its HTTP framing
//! (method, Content-Type, Content-Encoding, chunked, and generated
//! `Mcp-Name` / `Mcp-Method` headers, plain or `=?base64?…?=`, and
//! `Mcp-Session-Id` values).

use base64::{Engine, engine::general_purpose::STANDARD};
use proptest::{prelude::*, sample::select};

/// A JSON document written by hand: serde cannot write duplicates, `NaN`…
#[derive(Debug, Clone)]
enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    Str(String),
    /// A number or literal written as is.
    Lit(&'static str),
}

fn obj(members: Vec<(&str, J)>) -> J {
    J::Obj(
        members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn s(text: &str) -> J {
    J::Str(text.to_owned())
}

/// The tools the fuzzed key (allowed only `echo`) may or may not call.
pub const TOOLS: [&str; 3] = ["echo", "whoami", "secret_admin"];

/// Number forms parsers disagree on.
const NUMBERS: [&str; 10] = [
    "1",
    "9007199254740993",
    "123456789012345678901234567890",
    "1e999",
    "NaN",
    "-0",
    "1.0",
    "1e2",
    "-Infinity",
    "\"r\"",
];

/// How a second, conflicting reading is smuggled in.
#[derive(Debug, Clone)]
pub enum Dup {
    None,
    /// `params` holds `name` twice (the other spelled `spelling`: exact or case-folded).
    Name {
        spelling: &'static str,
        other: &'static str,
        first: bool,
    },
    /// The message holds `method` twice (`spelling` exact or case-folded), one `tools/list`.
    Method {
        spelling: &'static str,
        first: bool,
    },
    /// Two `params` objects.
    Params {
        other: &'static str,
    },
}

#[derive(Debug, Clone)]
pub enum Batch {
    Single,
    Wrapped,
    /// `[message, tools/call other]`
    Pair(&'static str),
}

#[derive(Debug, Clone)]
pub struct Message {
    pub tool: &'static str,
    /// The method as spelled (`tools/call`, `TOOLS/CALL`, ` tools/call`, `tools/list`).
    method: &'static str,
    id: &'static str,
    arg_number: &'static str,
    depth: usize,
    dup: Dup,
    batch: Batch,
}

/// How the document is written out.
#[derive(Debug, Clone)]
pub struct TextForm {
    whitespace: &'static str,
    /// Which characters of keys / values are written as `\uXXXX` (bit i % 64).
    escape_mask: u64,
    escape_keys: bool,
    escape_values: bool,
    trailer: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le {
        bom: bool,
    },
    Utf16Be {
        bom: bool,
    },
    /// gzip, with this `Content-Encoding` (none when empty).
    Gzip(&'static str),
    /// zlib ("deflate"), with this `Content-Encoding`.
    Deflate(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Reqwest,
    Raw,
    RawChunked,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub message: Message,
    pub text: TextForm,
    pub encoding: Encoding,
    pub content_types: Vec<&'static str>,
    pub method: &'static str,
    /// `Mcp-Name`, `Mcp-Method` and `Mcp-Session-Id` headers, in order.
    pub routing: Vec<(&'static str, String)>,
    pub transport: Transport,
}

fn message() -> impl Strategy<Value = Message> {
    let dup = prop_oneof![
        10 => Just(Dup::None),
        1 => (select(vec!["name", "Name", "NAME", "nAme"]), select(TOOLS.to_vec()), any::<bool>())
            .prop_map(|(spelling, other, first)| Dup::Name { spelling, other, first }),
        1 => (select(vec!["method", "Method", "METHOD"]), any::<bool>())
            .prop_map(|(spelling, first)| Dup::Method { spelling, first }),
        1 => select(TOOLS.to_vec()).prop_map(|other| Dup::Params { other }),
    ];
    let batch = prop_oneof![
        10 => Just(Batch::Single),
        1 => Just(Batch::Wrapped),
        1 => select(TOOLS.to_vec()).prop_map(Batch::Pair),
    ];
    (
        prop_oneof![2 => Just("echo"), 1 => select(TOOLS.to_vec())],
        prop_oneof![10 => Just("tools/call"), 1 => select(vec!["TOOLS/CALL", " tools/call", "tools/list", "Tools/Call"])],
        prop_oneof![4 => Just("1"), 1 => select(NUMBERS.to_vec())],
        prop_oneof![4 => Just("1"), 1 => select(NUMBERS.to_vec())],
        prop_oneof![3 => Just(0_usize), 1 => 1_usize..40],
        dup,
        batch,
    )
        .prop_map(|(tool, method, id, arg_number, depth, dup, batch)| Message {
            tool,
            method,
            id,
            arg_number,
            depth,
            dup,
            batch,
        })
}

fn text_form() -> impl Strategy<Value = TextForm> {
    (
        prop_oneof![3 => Just(""), 1 => select(vec![" ", "\n", " \t\r\n ", "\u{a0}", "\u{c}"])],
        any::<u64>(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        prop_oneof![8 => Just(""), 1 => select(vec!["\n", " x", "{}", "\u{0}"])],
    )
        .prop_map(
            |(whitespace, escape_mask, escape_keys, escape_values, trailer)| TextForm {
                whitespace,
                escape_mask,
                escape_keys,
                escape_values,
                trailer,
            },
        )
}

fn encoding() -> impl Strategy<Value = Encoding> {
    let coding = || select(vec!["gzip", "x-gzip", "GZIP", "deflate", "identity", ""]);
    prop_oneof![
        10 => Just(Encoding::Utf8),
        1 => Just(Encoding::Utf8Bom),
        1 => any::<bool>().prop_map(|bom| Encoding::Utf16Le { bom }),
        1 => any::<bool>().prop_map(|bom| Encoding::Utf16Be { bom }),
        1 => coding().prop_map(Encoding::Gzip),
        1 => coding().prop_map(Encoding::Deflate),
    ]
}

pub fn strategy() -> impl Strategy<Value = Case> {
    let content_types = prop_oneof![
        8 => Just(vec!["application/json"]),
        1 => select(vec![
            vec!["Application/JSON"],
            vec!["application/json; charset=utf-8"],
            vec!["application/json; charset=utf-16"],
            vec!["application/json;charset=UTF-16LE"],
            vec!["text/plain"],
            vec![],
            vec!["application/json", "text/plain"],
            vec!["text/plain", "application/json"],
            vec!["application/json, text/plain"],
        ]),
    ];
    let routing = prop_oneof![
        6 => Just(vec![]),
        3 => prop::collection::vec(routing_header(), 1..4),
    ];
    (
        message(),
        text_form(),
        encoding(),
        content_types,
        prop_oneof![4 => Just("POST"), 1 => select(vec!["PUT", "GET", "PATCH", "DELETE"])],
        routing,
        prop_oneof![
            4 => Just(Transport::Reqwest),
            1 => Just(Transport::Raw),
            1 => Just(Transport::RawChunked)
        ],
    )
        .prop_map(
            |(message, text, encoding, content_types, method, routing, transport)| Case {
                message,
                text,
                encoding,
                content_types,
                method,
                routing,
                transport,
            },
        )
}

/// What an `Mcp-Name` could say: the tools, methods' other names, near
/// misses, and any printable text.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "echo", "secret_admin", "whoami", "Echo", " echo", "echo ", "secret_admin\t",
            "test://static-text", "file:///public/../secret", "greeting", "*", "",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~]{0,24}",
    ]
}

/// What an `Mcp-Method` could say.
fn method_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "tools/call", "tools/list", "TOOLS/CALL", "tools/call ", "resources/read",
            "prompts/get", "completion/complete", "ping", "",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z/_.: -]{0,24}",
    ]
}

/// A value as sent: plain, or in the 2026-07-28 `=?base64?…?=` form (its
/// marker in either case, sometimes padded wrong or not Base64 at all).
fn spelled(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (text, 0..6u8).prop_map(|(text, form)| {
        let encoded = STANDARD.encode(text.as_bytes());
        match form {
            0..=2 => text,
            3 => format!("=?base64?{encoded}?="),
            4 => format!("=?BASE64?{}?=", encoded.trim_end_matches('=')),
            _ => format!("=?base64?{text}?="),
        }
    })
}

/// An `Mcp-Session-Id`: empty, a UUID's shape, printable noise, or too long.
fn session_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[!-~]{1,40}",
        "[a-z]{300,400}",
    ]
}

/// One routing header with a generated value.
fn routing_header() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        3 => (select(vec!["mcp-name", "Mcp-Name"]), spelled(header_text())),
        2 => (select(vec!["mcp-method", "MCP-METHOD"]), spelled(method_text())),
        1 => (Just("mcp-session-id"), session_id()),
    ]
}

/// A `tools/call` of `tool` as an echo client would send it.
fn call(tool: &str, id: &'static str) -> J {
    obj(vec![
        ("jsonrpc", s("2.0")),
        ("id", J::Lit(id)),
        ("method", s("tools/call")),
        (
            "params",
            obj(vec![
                ("name", s(tool)),
                ("arguments", obj(vec![("text", s("hi"))])),
            ]),
        ),
    ])
}

impl Message {
    fn document(&self) -> J {
        let mut text = s("hi");
        for _ in 0..self.depth {
            text = J::Arr(vec![text]);
        }
        let arguments = obj(vec![("text", text), ("n", J::Lit(self.arg_number))]);
        let mut params = vec![("name", s(self.tool)), ("arguments", arguments)];
        if let Dup::Name {
            spelling,
            other,
            first,
        } = self.dup
        {
            let at = if first { 0 } else { params.len() };
            params.insert(at, (spelling, s(other)));
        }
        let mut members = vec![
            ("jsonrpc", s("2.0")),
            ("id", J::Lit(self.id)),
            ("method", s(self.method)),
            ("params", obj(params)),
        ];
        match self.dup {
            Dup::Method { spelling, first } => {
                let at = if first { 0 } else { members.len() };
                members.insert(at, (spelling, s("tools/list")));
            }
            Dup::Params { other } => {
                members.push(("params", obj(vec![("name", s(other))])));
            }
            Dup::None | Dup::Name { .. } => {}
        }
        let message = obj(members);
        match self.batch {
            Batch::Single => message,
            Batch::Wrapped => J::Arr(vec![message]),
            Batch::Pair(other) => J::Arr(vec![message, call(other, "2")]),
        }
    }
}

impl TextForm {
    fn write(&self, value: &J, out: &mut String) {
        let ws = self.whitespace;
        match value {
            J::Lit(lit) => out.push_str(lit),
            J::Str(text) => self.string(text, self.escape_values, out),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(ws);
                    self.write(item, out);
                }
                out.push_str(ws);
                out.push(']');
            }
            J::Obj(members) => {
                out.push('{');
                for (i, (key, item)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(ws);
                    self.string(key, self.escape_keys, out);
                    out.push_str(ws);
                    out.push(':');
                    out.push_str(ws);
                    self.write(item, out);
                }
                out.push_str(ws);
                out.push('}');
            }
        }
    }

    fn string(&self, text: &str, escape: bool, out: &mut String) {
        out.push('"');
        for (i, c) in text.chars().enumerate() {
            if escape && self.escape_mask & (1 << (i % 64)) != 0 {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            } else if c == '"' || c == '\\' {
                out.push('\\');
                out.push(c);
            } else {
                out.push(c);
            }
        }
        out.push('"');
    }
}

impl Case {
    /// The body bytes, encoded.
    pub fn body(&self) -> Vec<u8> {
        let mut text = String::new();
        text.push_str(self.text.whitespace);
        self.text.write(&self.message.document(), &mut text);
        text.push_str(self.text.whitespace);
        text.push_str(self.text.trailer);
        encode(self.encoding, &text)
    }

    /// Headers besides `Authorization`, `Accept` and `X-Request-Id`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers: Vec<_> = self
            .content_types
            .iter()
            .map(|t| ("content-type", (*t).to_owned()))
            .collect();
        match self.encoding {
            Encoding::Gzip(coding) | Encoding::Deflate(coding) if !coding.is_empty() => {
                headers.push(("content-encoding", coding.to_owned()));
            }
            _ => {}
        }
        headers.extend(self.routing.iter().cloned());
        headers
    }
}

pub fn encode(encoding: Encoding, text: &str) -> Vec<u8> {
    let utf16 = |big: bool, bom: bool| {
        let mut out = Vec::new();
        for unit in (bom.then_some(0xfeff).into_iter()).chain(text.encode_utf16()) {
            out.extend(if big {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    };
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Utf8Bom => [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
        Encoding::Utf16Le { bom } => utf16(false, bom),
        Encoding::Utf16Be { bom } => utf16(true, bom),
        Encoding::Gzip(_) => gzip(text.as_bytes()),
        Encoding::Deflate(_) => zlib(text.as_bytes()),
    }
}

/// DEFLATE with stored (uncompressed) blocks: valid for every inflater,
/// and no compression library needed.
fn stored_blocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let len = u16::try_from(chunk.len()).expect("chunk ≤ 65535");
        out.push(u8::from(chunks.peek().is_none()));
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(chunk);
    }
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(stored_blocks(data));
    out.extend(crc32(data).to_le_bytes());
    out.extend(u32::try_from(data.len()).expect("small body").to_le_bytes());
    out
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    out.extend(stored_blocks(data));
    let (mut a, mut b) = (1_u32, 0_u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
