-- Single-use form tokens (issue #10): spending one is a DELETE that only one
-- request can win. Only a SHA-256 of the token is stored.
CREATE TABLE form_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES admin_users (id),
    expires_at BIGINT NOT NULL
);
CREATE INDEX form_tokens_expires ON form_tokens (expires_at);
