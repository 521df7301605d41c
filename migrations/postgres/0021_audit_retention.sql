-- The scheduler deletes per-call audit events past the retention period
-- (KEYSMITH_AUDIT_RETENTION_DAYS) oldest first: an index for exactly that.
CREATE INDEX audit_events_calls_at ON audit_events (at) WHERE action = 'tool.call';
