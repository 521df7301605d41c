//! Reading a password for `keysmith user create|reset-password`: the first
//! line of standard input, or, at a terminal, typed after a prompt and never
//! echoed.

use std::io::Write;

use anyhow::Context;

/// Reads the first line of standard input; on a terminal, prompts and reads
/// it without echo (what is typed is never shown).
pub async fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let terminal = std::io::stdin().is_terminal();
    let line = tokio::task::spawn_blocking(move || {
        // Echo goes off before the prompt shows: nothing typed after it is seen.
        let _echo_off = terminal.then(EchoOff::new).transpose()?;
        if terminal {
            let _ = write!(std::io::stderr(), "Password (not shown): ");
        }
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await?
    .context("failed to read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The terminal's echo turned off while it lives, restored when dropped
/// (also on an error or a panic while reading).
struct EchoOff(rustix::termios::Termios);

impl EchoOff {
    fn new() -> std::io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let before = tcgetattr(&stdin)?;
        let mut quiet = before.clone();
        // No echo of what is typed, but of the Enter that ends it.
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        Ok(Self(before))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}
