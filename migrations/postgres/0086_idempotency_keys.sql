-- Idempotency-Key on the JSON API's creates and rotations: a retried
-- request with the same key and body gets the first answer again instead
-- of minting a second key. One row per (credential, client key) for 24 h.
-- `scope` is an HMAC of the credential that sent the request (never the
-- credential); `response` is sealed under the pepper, since the first
-- answer may hold a key shown once.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status BIGINT,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
-- The purge drops rows older than a day.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
