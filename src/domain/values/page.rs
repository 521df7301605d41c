//! Cursor pagination: fetch one row more than asked to learn whether there is a next page.

use serde::Serialize;

use crate::{
    domain::UnixTime,
    domain::error::{DomainError, DomainResult},
};

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

/// The largest page any list returns: bounds what one request reads and sends.
pub const MAX_LIMIT: i64 = 200;

/// A page size: default 50, from 1 to [`MAX_LIMIT`]. Anything else is `400
/// invalid_limit`, not silently changed, so a client learns why it got fewer
/// rows than it asked for.
pub fn limit(asked: Option<i64>) -> DomainResult<i64> {
    match asked {
        None => Ok(50),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::Malformed(
            "invalid_limit",
            format!("limit must be from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A `<unix seconds>.<id>` cursor (the time and id of the last row seen),
/// split; the id is for the caller to check. Anything else is `400
/// invalid_cursor`.
pub fn split_cursor(raw: &str) -> DomainResult<(i64, &str)> {
    let (at, id) = raw.split_once('.').ok_or_else(invalid_cursor)?;
    Ok((at.parse().map_err(|_| invalid_cursor())?, id))
}

/// A `<unix seconds>.<id>` cursor whose id is a base62 id (keys, service
/// users), as the time and the id.
pub fn time_and_id(raw: &str) -> DomainResult<(UnixTime, String)> {
    let (at, id) = split_cursor(raw)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid_cursor());
    }
    Ok((UnixTime::from_secs(at), id.to_owned()))
}

pub fn invalid_cursor() -> DomainError {
    DomainError::Malformed(
        "invalid_cursor",
        "cursor is not one this API returned".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_the_maximum_are_refused() {
        assert_eq!(limit(None).expect("default"), 50);
        assert_eq!(limit(Some(1)).expect("one"), 1);
        assert_eq!(limit(Some(MAX_LIMIT)).expect("max"), MAX_LIMIT);
        for bad in [0, -1, MAX_LIMIT + 1, i64::MAX] {
            let err = limit(Some(bad)).expect_err("refused");
            assert!(
                matches!(err, DomainError::Malformed("invalid_limit", _)),
                "{bad}"
            );
        }
    }

    #[test]
    fn cursors_are_a_time_and_a_base62_id() {
        let (at, id) = time_and_id("1700000000.abc123").expect("cursor");
        assert_eq!((at.secs(), id.as_str()), (1_700_000_000, "abc123"));
        for bad in ["", "garbage", "12.", "x.abc", "12.a-b", "12.a'b"] {
            assert!(time_and_id(bad).is_err(), "{bad}");
        }
    }
}
