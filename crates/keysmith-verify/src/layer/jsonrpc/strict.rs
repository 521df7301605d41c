//! JSON values read under the strict rule of [`super`]: a [`Strict`] value is
//! built (the few members a message keeps, such as its `id`), a [`Skim`]med
//! one is only checked (everything else: arguments, results, unknown
//! members), so a request pays for checking its body, not for copying it.
//! Both apply the same checks in the same places; `tests.rs` compares the
//! reader built on them with one that builds the whole tree.

use std::{borrow::Cow, collections::HashSet, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;
/// The largest integer JavaScript reads exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Up to this many members, a new name is compared with each earlier one;
/// past it, the folded names go into a set, so that an object of many
/// members costs linear time, not quadratic.
pub(super) const FEW_MEMBERS: usize = 8;

/// The depth a value sits at, one level below `depth`, or an error past
/// [`MAX_DEPTH`].
pub(super) fn nested<E: de::Error>(depth: usize) -> Result<usize, E> {
    if depth >= MAX_DEPTH {
        return Err(E::custom("nested too deeply"));
    }
    Ok(depth + 1)
}

fn check_i64<E: de::Error>(v: i64) -> Result<(), E> {
    if v.unsigned_abs() > MAX_SAFE_INTEGER {
        return Err(E::custom("integer outside ±(2^53 - 1)"));
    }
    Ok(())
}

fn check_u64<E: de::Error>(v: u64) -> Result<(), E> {
    if v > MAX_SAFE_INTEGER {
        return Err(E::custom("integer outside ±(2^53 - 1)"));
    }
    Ok(())
}

fn check_f64<E: de::Error>(v: f64) -> Result<Number, E> {
    // serde_json reads an integer too large for 64 bits as a float: an
    // integral float this large may be such an integer, read differently by
    // JavaScript (rounded) and Python (exact).
    if v.fract() == 0.0 && v.abs() > MAX_SAFE_INTEGER as f64 {
        return Err(E::custom("integral number outside ±(2^53 - 1)"));
    }
    Number::from_f64(v).ok_or_else(|| E::custom("not a finite number"))
}

/// Member names compared the way the most lenient parser compares them:
/// Unicode case folding (Go folds `ſ` to `s` and `K` to `k` too).
fn folded(name: &str) -> String {
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.to_uppercase().to_lowercase()
    }
}

/// Whether two member names are one for the most lenient parser, without
/// allocating when both are ASCII (the names of every MCP message).
pub(crate) fn same_member(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        folded(a) == folded(b)
    }
}

/// The member names of one object so far, to refuse a duplicate. The first
/// [`FEW_MEMBERS`] stay on the stack, borrowed from the body when they hold
/// no escape.
pub(super) struct SeenMembers<'de> {
    few: [Cow<'de, str>; FEW_MEMBERS],
    count: usize,
    many: Option<HashSet<String>>,
}

impl<'de> SeenMembers<'de> {
    pub(super) fn new() -> Self {
        Self {
            few: Default::default(),
            count: 0,
            many: None,
        }
    }

    /// Records the next member's name, or refuses it as a duplicate.
    pub(super) fn insert<E: de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        let fresh = if self.count < FEW_MEMBERS {
            let fresh = !self.few[..self.count]
                .iter()
                .any(|seen| same_member(seen, &name));
            self.few[self.count] = name;
            self.count += 1;
            fresh
        } else {
            let few = &self.few;
            let many = self
                .many
                .get_or_insert_with(|| few.iter().map(|k| folded(k)).collect());
            many.insert(folded(&name))
        };
        if fresh {
            Ok(())
        } else {
            Err(E::custom("duplicate member"))
        }
    }
}

/// A member name, borrowed from the body unless it holds an escape.
pub(super) struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A value at `depth`, read strictly and built.
pub(super) struct Strict {
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("strict JSON")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        check_i64(v)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        check_u64(v)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        check_f64(v).map(Value::Number)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = nested(self.depth)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict { depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = nested(self.depth)?;
        let mut members = Map::new();
        let mut seen = SeenMembers::new();
        while let Some(name) = map.next_key_seed(MemberName)? {
            seen.insert(name.clone())?;
            let value = map.next_value_seed(Strict { depth })?;
            members.insert(name.into_owned(), value);
        }
        Ok(Value::Object(members))
    }
}

/// A value at `depth`, read strictly and dropped.
pub(super) struct Skim {
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for Skim {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skim {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("strict JSON")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        check_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        check_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        check_f64(v).map(drop)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = nested(self.depth)?;
        while seq.next_element_seed(Skim { depth })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = nested(self.depth)?;
        let mut seen = SeenMembers::new();
        while let Some(name) = map.next_key_seed(MemberName)? {
            seen.insert(name)?;
            map.next_value_seed(Skim { depth })?;
        }
        Ok(())
    }
}
