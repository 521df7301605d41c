//! What commands print. Results go to standard output (so they can be piped); errors go
//! to standard error, printed once by `Cli::run`.

use std::io::Write;

use anyhow::Context;

/// Prints one line (or several) to standard output.
pub fn say(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    writeln!(std::io::stdout(), "{args}").context("failed to write to standard output")
}
