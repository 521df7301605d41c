-- Sessions follow the account (issue #10). The epoch is bumped whenever the
-- account's sessions must end (disabled, role changed or removed, password
-- reset, "sign out everywhere"); each session remembers the epoch it was
-- opened in and is refused on its next request once they differ.
ALTER TABLE admin_users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

-- What happened to admin accounts (not tied to one tenant, so not in
-- audit_events, whose rows belong to a tenant).
CREATE TABLE account_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES admin_users (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX account_events_user ON account_events (user_id, id DESC);
