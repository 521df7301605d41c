//! Renders notices into subject, plain text and HTML with askama.

use crate::domain::UnixTime;
use askama::Template;
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

use crate::domain::notice::{
    AnomalyNotice, ExpiryReminder, Notice, OAuthConnectedNotice, RevocationNotice, RotationNotice,
    WebhookDisabledNotice,
};

const WHEN: &[BorrowedFormatItem<'static>] =
    format_description!("[weekday], [day] [month repr:long] [year] at [hour]:[minute] UTC");

fn when(at: UnixTime) -> String {
    at.to_datetime()
        .format(WHEN)
        .unwrap_or_else(|_| at.rfc3339())
}

#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "email/rotation.txt")]
struct RotationText<'a> {
    n: &'a RotationNotice,
    cutoff: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/rotation.html")]
struct RotationHtml<'a> {
    n: &'a RotationNotice,
    cutoff: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/expiry.txt")]
struct ExpiryText<'a> {
    n: &'a ExpiryReminder,
    expires: &'a str,
    days_left: i64,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/expiry.html")]
struct ExpiryHtml<'a> {
    n: &'a ExpiryReminder,
    expires: &'a str,
    days_left: i64,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/revocation.txt")]
struct RevocationText<'a> {
    n: &'a RevocationNotice,
    revoked: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/revocation.html")]
struct RevocationHtml<'a> {
    n: &'a RevocationNotice,
    revoked: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/anomaly.txt")]
struct AnomalyText<'a> {
    n: &'a AnomalyNotice,
    hour: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/anomaly.html")]
struct AnomalyHtml<'a> {
    n: &'a AnomalyNotice,
    hour: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/webhook_disabled.txt")]
struct WebhookDisabledText<'a> {
    n: &'a WebhookDisabledNotice,
    disabled: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/webhook_disabled.html")]
struct WebhookDisabledHtml<'a> {
    n: &'a WebhookDisabledNotice,
    disabled: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/oauth_connected.txt")]
struct OAuthConnectedText<'a> {
    n: &'a OAuthConnectedNotice,
    approved: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/oauth_connected.html")]
struct OAuthConnectedHtml<'a> {
    n: &'a OAuthConnectedNotice,
    approved: &'a str,
    link: &'a str,
}

/// Renders `notice`; links point at `public_url`. `now` gives the days left.
pub fn render(
    notice: &Notice,
    public_url: &str,
    now: OffsetDateTime,
) -> Result<Rendered, askama::Error> {
    match notice {
        Notice::Rotation(n) => {
            let cutoff = when(n.cutoff_at);
            let link = format!("{public_url}/admin/api-keys/{}", n.new_key_id);
            Ok(Rendered {
                subject: format!(
                    "Key \"{}\" of {} was rotated; the old key stops working {}",
                    n.key_name, n.service_user, cutoff
                ),
                text: RotationText {
                    n,
                    cutoff: &cutoff,
                    link: &link,
                }
                .render()?,
                html: RotationHtml {
                    n,
                    cutoff: &cutoff,
                    link: &link,
                }
                .render()?,
            })
        }
        Notice::Anomaly(n) => {
            let hour = when(n.hour_start);
            let link = format!("{public_url}/admin/api-keys/{}", n.key_id);
            Ok(Rendered {
                subject: format!(
                    "Key \"{}\" of {} made {} calls in an hour, far above its usual",
                    n.key_name, n.service_user, n.calls
                ),
                text: AnomalyText {
                    n,
                    hour: &hour,
                    link: &link,
                }
                .render()?,
                html: AnomalyHtml {
                    n,
                    hour: &hour,
                    link: &link,
                }
                .render()?,
            })
        }
        Notice::Revocation(n) => {
            let revoked = when(n.revoked_at);
            let link = format!("{public_url}/admin/api-keys/{}", n.key_id);
            Ok(Rendered {
                subject: format!(
                    "Key \"{}\" of {} was revoked by {}",
                    n.key_name, n.service_user, n.revoked_by
                ),
                text: RevocationText {
                    n,
                    revoked: &revoked,
                    link: &link,
                }
                .render()?,
                html: RevocationHtml {
                    n,
                    revoked: &revoked,
                    link: &link,
                }
                .render()?,
            })
        }
        Notice::WebhookDisabled(n) => {
            let disabled = when(n.disabled_at);
            let link = format!("{public_url}/admin/webhooks");
            Ok(Rendered {
                subject: format!(
                    "A webhook of {} was disabled after {} failed deliveries",
                    n.tenant_name, n.failures
                ),
                text: WebhookDisabledText {
                    n,
                    disabled: &disabled,
                    link: &link,
                }
                .render()?,
                html: WebhookDisabledHtml {
                    n,
                    disabled: &disabled,
                    link: &link,
                }
                .render()?,
            })
        }
        Notice::OAuthConnected(n) => {
            let approved = when(n.approved_at);
            let link = format!("{public_url}/admin/oauth-grants?tenant={}", n.tenant_slug);
            Ok(Rendered {
                subject: format!(
                    "{} was connected to act as {} (approved by {})",
                    n.client_name, n.service_user, n.approved_by
                ),
                text: OAuthConnectedText {
                    n,
                    approved: &approved,
                    link: &link,
                }
                .render()?,
                html: OAuthConnectedHtml {
                    n,
                    approved: &approved,
                    link: &link,
                }
                .render()?,
            })
        }
        Notice::ExpiryReminder(n) => {
            let expires = when(n.expires_at);
            let seconds_left = (n.expires_at - UnixTime::from(now)).whole_seconds();
            // Rounded up: a key expiring in 6 days and 2 hours has "7 days left".
            let days_left = ((seconds_left + 86_399) / 86_400).max(0);
            let link = format!("{public_url}/admin/api-keys/{}", n.key_id);
            Ok(Rendered {
                subject: format!(
                    "Key \"{}\" of {} expires in {} day{}",
                    n.key_name,
                    n.service_user,
                    days_left,
                    if days_left == 1 { "" } else { "s" }
                ),
                text: ExpiryText {
                    n,
                    expires: &expires,
                    days_left,
                    link: &link,
                }
                .render()?,
                html: ExpiryHtml {
                    n,
                    expires: &expires,
                    days_left,
                    link: &link,
                }
                .render()?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KeyId;

    /// Fixed ids, hints and dates: the snapshots hold no run-specific value.
    fn rotation() -> Notice {
        Notice::Rotation(RotationNotice {
            tenant_name: "Acme <Inc>".into(),
            service_user: "ci-bot".into(),
            key_name: "deploy".into(),
            old_key_id: KeyId::new("OLDKEYID00000000"),
            old_hint: "aaaa".into(),
            new_key_id: KeyId::new("NEWKEYID00000000"),
            new_hint: "bbbb".into(),
            cutoff_at: UnixTime::from_secs(1_800_000_000),
            rotated_by: "owner@acme.test".into(),
        })
    }

    fn reminder() -> Notice {
        Notice::ExpiryReminder(ExpiryReminder {
            tenant_name: "Acme".into(),
            service_user: "ci-bot".into(),
            key_name: "deploy".into(),
            key_id: KeyId::new("KEYID00000000000"),
            hint: "cccc".into(),
            expires_at: UnixTime::from_secs(1_800_000_000),
            threshold_days: 7,
        })
    }

    #[test]
    fn rotation_email() {
        let r = render(
            &rotation(),
            "https://keys.example.com",
            UnixTime::from_secs(1_799_000_000).to_datetime(),
        )
        .expect("render");
        insta::assert_snapshot!("rotation_subject", r.subject);
        insta::assert_snapshot!("rotation_text", r.text);
        insta::assert_snapshot!("rotation_html", r.html);
        assert!(
            r.html.contains("Acme &#60;Inc&#62;") || r.html.contains("Acme &lt;Inc&gt;"),
            "HTML is escaped: {}",
            r.html
        );
    }

    #[test]
    fn expiry_email() {
        let now = UnixTime::from_secs(1_800_000_000 - 6 * 86_400 - 3_600).to_datetime();
        let r = render(&reminder(), "https://keys.example.com", now).expect("render");
        assert!(r.subject.contains("expires in 7 days"), "{}", r.subject);
        insta::assert_snapshot!("expiry_subject", r.subject);
        insta::assert_snapshot!("expiry_text", r.text);
        insta::assert_snapshot!("expiry_html", r.html);
    }

    #[test]
    fn webhook_disabled_email_names_the_endpoint_and_escapes_its_text() {
        let notice = Notice::WebhookDisabled(WebhookDisabledNotice {
            tenant_name: "Acme".into(),
            webhook_id: "wh_123".into(),
            url: "https://hooks.example.com/<x>".into(),
            failures: 20,
            last_error: "request failed: <script>".into(),
            disabled_at: UnixTime::from_secs(1_800_000_000),
        });
        let r = render(
            &notice,
            "https://keys.example.com",
            UnixTime::from_secs(1_800_000_000).to_datetime(),
        )
        .expect("render");
        assert_eq!(
            r.subject,
            "A webhook of Acme was disabled after 20 failed deliveries"
        );
        for body in [&r.text, &r.html] {
            assert!(
                body.contains("wh_123") && body.contains("https://keys.example.com/admin/webhooks"),
                "{body}"
            );
        }
        assert!(
            r.html.contains("request failed:") && !r.html.contains("<script>"),
            "{}",
            r.html
        );
    }
}
