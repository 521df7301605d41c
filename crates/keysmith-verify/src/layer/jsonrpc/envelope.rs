//! One pass over a body that checks all of it under the strict rule and
//! keeps only what [`super::read_message`] judges: which members the message
//! has, its `id`, and the strings `jsonrpc`, `method`, `params.name`,
//! `params.uri`, `params.taskId` and `params.ref`'s `type`, `name` and `uri`
//! (borrowed from the body when they hold no escape).

use std::{borrow::Cow, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::strict::{MemberName, SeenMembers, Skim, Strict, nested};

/// The members of a message object that decide what it is.
#[derive(Debug, Default)]
pub(super) struct Envelope<'de> {
    /// `jsonrpc`: `Some(None)` when present but not a string.
    pub jsonrpc: Option<Option<Cow<'de, str>>>,
    pub id: Option<Value>,
    /// `method`: `Some(None)` when present but not a string.
    pub method: Option<Option<Cow<'de, str>>>,
    pub params: Option<Params<'de>>,
    pub has_result: bool,
    pub has_error: bool,
    /// A member outside the six JSON-RPC ones.
    pub has_unknown: bool,
}

/// What `params` is.
#[derive(Debug)]
pub(super) enum Params<'de> {
    /// An object, with the members that say what a request addresses (the
    /// `Mcp-Name` header mirrors one of them), each when it is a string.
    Object(Addressed<'de>),
    /// Anything else.
    Other,
}

/// `params.name`, `params.uri`, `params.taskId` and `params.type`, when
/// strings, and `params.ref` (the same members of it) when an object.
#[derive(Debug, Default)]
pub(super) struct Addressed<'de> {
    pub name: Option<Cow<'de, str>>,
    pub uri: Option<Cow<'de, str>>,
    pub task_id: Option<Cow<'de, str>>,
    /// `type`: what a completion's `ref` is.
    pub kind: Option<Cow<'de, str>>,
    pub reference: Option<Box<Addressed<'de>>>,
}

/// Reads a whole body: the envelope of an object, `None` for any other
/// (still checked) value; an error for a body outside the strict rule.
pub(super) fn read(body: &[u8]) -> Result<Option<Envelope<'_>>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let envelope = Top { depth: 0 }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(envelope)
}

/// The top-level value.
struct Top {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Option<Envelope<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Visitor methods that check a value of any other shape at `depth` as
/// [`Skim`] does, and answer `$other` for it.
macro_rules! skim_other_shapes {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Skim { depth: self.depth }.visit_bool(v).map(|()| $other)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Skim { depth: self.depth }.visit_i64(v).map(|()| $other)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Skim { depth: self.depth }.visit_u64(v).map(|()| $other)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Skim { depth: self.depth }.visit_f64(v).map(|()| $other)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Skim { depth: self.depth }.visit_seq(seq).map(|()| $other)
        }
    };
}

impl<'de> Visitor<'de> for Top {
    type Value = Option<Envelope<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("strict JSON")
    }

    skim_other_shapes!(None);

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = nested(self.depth)?;
        let mut envelope = Envelope::default();
        let mut seen = SeenMembers::new();
        while let Some(name) = map.next_key_seed(MemberName)? {
            seen.insert(name.clone())?;
            match name.as_ref() {
                "jsonrpc" => envelope.jsonrpc = Some(map.next_value_seed(Text { depth })?),
                "id" => envelope.id = Some(map.next_value_seed(Strict { depth })?),
                "method" => envelope.method = Some(map.next_value_seed(Text { depth })?),
                "params" => {
                    let seed = ParamsSeed { depth, outer: true };
                    envelope.params = Some(map.next_value_seed(seed)?);
                }
                other => {
                    map.next_value_seed(Skim { depth })?;
                    match other {
                        "result" => envelope.has_result = true,
                        "error" => envelope.has_error = true,
                        _ => envelope.has_unknown = true,
                    }
                }
            }
        }
        Ok(Some(envelope))
    }
}

/// A value at `depth` kept when it is a string, checked and dropped otherwise.
struct Text {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("strict JSON")
    }

    skim_other_shapes!(None);

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skim { depth: self.depth }.visit_map(map).map(|()| None)
    }
}

/// `params` at `depth` (`outer`), or its `ref`.
struct ParamsSeed {
    depth: usize,
    outer: bool,
}

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Params<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Params<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("strict JSON")
    }

    skim_other_shapes!(Params::Other);

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Params::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = nested(self.depth)?;
        let mut addressed = Addressed::default();
        let mut seen = SeenMembers::new();
        while let Some(member) = map.next_key_seed(MemberName)? {
            seen.insert(member.clone())?;
            let slot = match member.as_ref() {
                "name" => &mut addressed.name,
                "uri" => &mut addressed.uri,
                "taskId" => &mut addressed.task_id,
                "type" => &mut addressed.kind,
                "ref" if self.outer => {
                    let seed = ParamsSeed {
                        depth,
                        outer: false,
                    };
                    if let Params::Object(reference) = map.next_value_seed(seed)? {
                        addressed.reference = Some(Box::new(reference));
                    }
                    continue;
                }
                _ => {
                    map.next_value_seed(Skim { depth })?;
                    continue;
                }
            };
            *slot = map.next_value_seed(Text { depth })?;
        }
        Ok(Params::Object(addressed))
    }
}
