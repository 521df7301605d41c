-- The owner of a service user is told by email when an OAuth client is
-- connected to act as it: one more kind of outbox row.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('rotation', 'expiry_reminder', 'revocation', 'anomaly', 'webhook_disabled', 'oauth_connected'));
