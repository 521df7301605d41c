-- Each webhook endpoint keeps its health: consecutive failed attempts, a
-- pause after each failure (a receiver that never answers then costs one
-- timeout per pause, not one per queued delivery), when it was disabled
-- after too many failures, and its last test event (one per 10 seconds).
ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN paused_until BIGINT;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_at BIGINT;
ALTER TABLE webhook_endpoints ADD COLUMN last_test_at BIGINT;

-- The tenant's owners are told by email when an endpoint is disabled.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('rotation', 'expiry_reminder', 'revocation', 'anomaly', 'webhook_disabled'));
