-- The owner of a service user is told by email when an OAuth client is
-- connected to act as it: one more kind of outbox row. SQLite cannot change
-- a CHECK constraint in place, so the table is rebuilt with the same rows
-- (as in 0020 and 0081).
CREATE TABLE outbox_next (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('rotation', 'expiry_reminder', 'revocation', 'anomaly', 'webhook_disabled', 'oauth_connected')),
    threshold_days INTEGER,
    dedupe_key TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    lease_owner TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    CONSTRAINT outbox_dedupe_key UNIQUE (dedupe_key)
);
INSERT INTO outbox_next SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_next RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_key ON outbox (tenant_id, key_id, id DESC);
