//! Serializes stored Unix-second timestamps as RFC 3339 UTC strings.

use serde::Serializer;
use time::format_description::well_known::Rfc3339;

use keysmith_verify::timestamp;

pub fn serialize<S: Serializer>(at: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*at))
}

pub fn format(at: i64) -> String {
    timestamp::from_unix(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub mod option {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, s),
            None => s.serialize_none(),
        }
    }
}
