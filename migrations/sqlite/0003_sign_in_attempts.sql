-- Sign-in attempts per subject (an account or a client address), counted by
-- one upsert before any password is checked (issue #10). `reset_at`: when
-- the count starts again (end of the window, or of the back-off once over
-- the limit). Replaces login_failures, whose check and record were separate.
CREATE TABLE sign_in_attempts (
    subject TEXT PRIMARY KEY NOT NULL,
    attempts INTEGER NOT NULL,
    reset_at INTEGER NOT NULL
);
CREATE INDEX sign_in_attempts_reset ON sign_in_attempts (reset_at);
DROP TABLE login_failures;
