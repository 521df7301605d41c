//! Prometheus counters, rendered by hand: a handful of atomics needs no registry.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering},
};

use keysmith_verify::VerifyCode;

const CODES: [VerifyCode; 7] = [
    VerifyCode::Valid,
    VerifyCode::Malformed,
    VerifyCode::NotFound,
    VerifyCode::Expired,
    VerifyCode::Revoked,
    VerifyCode::Disabled,
    VerifyCode::ToolNotAllowed,
];

#[derive(Debug, Default)]
pub struct Metrics {
    verifications: [AtomicU64; CODES.len()],
    pub keys_created: AtomicU64,
    pub keys_rotated: AtomicU64,
    pub keys_revoked: AtomicU64,
    pub emails_sent: AtomicU64,
    pub email_attempts_failed: AtomicU64,
    pub emails_failed: AtomicU64,
    pub scheduler_steps_failed: AtomicU64,
    pub scheduler_rows_skipped: AtomicU64,
    /// Passwords actually checked (argon2 runs) at sign-in: what throttling
    /// and the hashing limit bound.
    pub password_checks: AtomicU64,
}

impl Metrics {
    pub fn count_verification(&self, code: VerifyCode) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.verifications[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP keysmith_verifications_total Key verifications by result code.\n# TYPE keysmith_verifications_total counter\n");
        for (code, count) in CODES.iter().zip(&self.verifications) {
            let _ = writeln!(
                out,
                "keysmith_verifications_total{{code=\"{}\"}} {}",
                code.as_str(),
                count.load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in [
            (
                "keysmith_keys_created_total",
                "Keys created.",
                &self.keys_created,
            ),
            (
                "keysmith_keys_rotated_total",
                "Keys rotated.",
                &self.keys_rotated,
            ),
            (
                "keysmith_keys_revoked_total",
                "Keys revoked by an admin.",
                &self.keys_revoked,
            ),
            (
                "keysmith_emails_sent_total",
                "Owner emails delivered.",
                &self.emails_sent,
            ),
            (
                "keysmith_email_attempts_failed_total",
                "Email delivery attempts that failed (retried or not).",
                &self.email_attempts_failed,
            ),
            (
                "keysmith_emails_failed_total",
                "Owner emails given up on after every retry.",
                &self.emails_failed,
            ),
            (
                "keysmith_scheduler_steps_failed_total",
                "Scheduler steps (sweep, reminders, delivery, purge) that failed; the others still ran.",
                &self.scheduler_steps_failed,
            ),
            (
                "keysmith_scheduler_rows_skipped_total",
                "Keys or emails a scheduler step skipped after an error, for a later tick.",
                &self.scheduler_rows_skipped,
            ),
            (
                "keysmith_sign_in_password_checks_total",
                "Passwords checked at admin sign-in (throttled attempts are not).",
                &self.password_checks,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}
