//! Delivery: SMTP through lettre, or `.eml` files when no SMTP server is configured.

use std::path::PathBuf;

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

use super::render::Rendered;
use crate::config::Config;

#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// The embedded default: each mail becomes a file under `<data dir>/outbox/`.
    Files { dir: PathBuf, from: Mailbox },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may carry credentials: never print the transport.
        match self {
            Self::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Self::Files { dir, from } => write!(f, "Mailer::Files({}, from {from})", dir.display()),
        }
    }
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let from: Mailbox = config.mail_from.parse().context(
            "KEYSMITH_MAIL_FROM must be an address like `Keysmith <keysmith@example.com>`",
        )?;
        Ok(match &config.smtp_url {
            Some(url) => Self::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .context("KEYSMITH_SMTP_URL is invalid (expected smtp://host:port, smtps://… or smtp://…?tls=required)")?
                    .timeout(Some(std::time::Duration::from_secs(10)))
                    .build(),
                from,
            },
            None => Self::Files {
                dir: config.data_dir.join("outbox"),
                from,
            },
        })
    }

    /// Sends one rendered mail. `id` names the `.eml` file.
    pub async fn send(&self, id: i64, to: &str, mail: &Rendered) -> anyhow::Result<()> {
        let from = match self {
            Self::Smtp { from, .. } | Self::Files { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(to.parse().context("invalid recipient address")?)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .context("failed to build the message")?;
        match self {
            Self::Smtp { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .context("SMTP delivery failed")?;
            }
            Self::Files { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .context("failed to create the outbox directory")?;
                let path = dir.join(format!("{id:010}.eml"));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .with_context(|| format!("failed to write {}", path.display()))?;
            }
        }
        Ok(())
    }
}
