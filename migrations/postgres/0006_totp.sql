-- TOTP second factor (issue #10). Secrets are stored encrypted under the
-- pepper (never in clear): `v<pepper version>:<hex nonce>:<hex ciphertext>`.
ALTER TABLE admin_users ADD COLUMN totp_secret TEXT;
-- A secret shown for enrolment, not yet confirmed with a code.
ALTER TABLE admin_users ADD COLUMN totp_pending TEXT;
ALTER TABLE admin_users ADD COLUMN totp_enabled_at BIGINT;
-- The last 30-second step a code was accepted for: a code is never
-- accepted twice (a conditional update only one request can win).
ALTER TABLE admin_users ADD COLUMN totp_last_step BIGINT;

-- A tenant can require a second factor of its admins.
ALTER TABLE tenants ADD COLUMN require_totp BIGINT NOT NULL DEFAULT 0;

-- Single-use recovery codes, stored as an HMAC under the pepper.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES admin_users (id),
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
