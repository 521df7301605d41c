-- Owner emails when a key is revoked by someone else, and when its usage jumps
-- far above its usual (anomaly): two more kinds of outbox row.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('rotation', 'expiry_reminder', 'revocation', 'anomaly'));
