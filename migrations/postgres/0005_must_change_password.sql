-- Set by a password reset (issue #10): the account must choose a new
-- password at its next sign-in before it can do anything else.
ALTER TABLE admin_users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
