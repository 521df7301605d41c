//! Cursor pagination: fetch one row more than asked to learn whether there is a next page.

use serde::Serialize;

use crate::error::{AppError, AppResult};

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

/// Page sizes: default 50, at most 200.
pub fn clamp_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 200)
}

/// A `<unix seconds>.<id>` cursor (the time and id of the last row seen),
/// split; the id is for the caller to check. Anything else is `400
/// invalid_cursor`.
pub fn split_cursor(raw: &str) -> AppResult<(i64, &str)> {
    let (at, id) = raw.split_once('.').ok_or_else(invalid_cursor)?;
    Ok((at.parse().map_err(|_| invalid_cursor())?, id))
}

pub fn invalid_cursor() -> AppError {
    AppError::BadRequest(
        "invalid_cursor",
        "cursor is not one this API returned".into(),
    )
}
