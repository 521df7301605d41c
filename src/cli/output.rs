//! What commands print: a line of prose, a JSON document, or an aligned
//! table. Results go to standard output (so they can be piped); errors go
//! to standard error, printed once by `Cli::run`.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

/// Prints one line (or several) to standard output.
pub fn say(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    writeln!(std::io::stdout(), "{args}").context("failed to write to standard output")
}

/// Prints `value` as one line of JSON: the shape the JSON API answers with.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string(value).context("failed to serialize the output")?;
    say(format_args!("{text}"))
}

/// A list as the JSON API answers one: `{"items": [...], "next_cursor": …}`.
/// Lists the CLI reads whole still carry `next_cursor` (always `null`), so
/// every list command has one shape.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Listing<T> {
    pub fn whole(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

/// Rows under a header, each column as wide as its widest cell, so a person
/// can read down a column.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    /// The table as text; the last column is not padded (no trailing spaces).
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i == last {
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    let pad = width - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn print(&self) -> anyhow::Result<()> {
        write!(std::io::stdout(), "{}", self.render()).context("failed to write to standard output")
    }
}

/// `value`, or `-` for nothing, so an empty cell still reads as a column.
pub fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A time of the JSON shapes (RFC 3339, UTC) as a table shows it:
/// `2026-12-07 12:00` (UTC, to the minute).
pub fn short_time(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(minute) if rfc3339.as_bytes().get(10) == Some(&b'T') => minute.replacen('T', " ", 1),
        _ => rfc3339.to_owned(),
    }
}

/// One thing shown as `name  value` lines, the values lined up.
#[derive(Debug, Default)]
pub struct Fields(Vec<(&'static str, String)>);

impl Fields {
    pub fn add(&mut self, name: &'static str, value: &str) {
        self.0.push((name, value.to_owned()));
    }

    /// Adds the line only when there is a value (a revoked key's reason).
    pub fn add_some(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.add(name, value);
        }
    }

    pub fn render(&self) -> String {
        let width = self.0.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        self.0
            .iter()
            .map(|(name, value)| format!("{name:width$}  {value}\n"))
            .collect()
    }

    pub fn print(&self) -> anyhow::Result<()> {
        write!(std::io::stdout(), "{}", self.render()).context("failed to write to standard output")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_width_of_their_cells() {
        let mut table = Table::new(&["ID", "NAME", "STATUS"]);
        table.row(vec!["a".into(), "a longer name".into(), "active".into()]);
        table.row(vec!["bbbb".into(), "x".into(), "revoked".into()]);
        assert_eq!(
            table.render(),
            "ID    NAME           STATUS\n\
             a     a longer name  active\n\
             bbbb  x              revoked\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header_and_cells_count_characters_not_bytes() {
        assert_eq!(Table::new(&["ID", "NAME"]).render(), "ID  NAME\n");
        let mut table = Table::new(&["NAME", "X"]);
        table.row(vec!["Zoë".into(), "1".into()]);
        assert_eq!(table.render(), "NAME  X\nZoë   1\n");
    }

    #[test]
    fn fields_line_up_and_times_shorten_to_the_minute() {
        let mut fields = Fields::default();
        fields.add("id", "k1");
        fields.add_some("reason", None);
        fields.add("last used", "-");
        assert_eq!(fields.render(), "id         k1\nlast used  -\n");
        assert_eq!(short_time("2026-12-07T12:34:56Z"), "2026-12-07 12:34");
        assert_eq!(short_time("soon"), "soon");
    }
}
