-- What a verified call came to: the HTTP status answered (the upstream's, or
-- the layer's own refusal) and the time until the answer's headers, in µs.
ALTER TABLE audit_events ADD COLUMN status INTEGER;
ALTER TABLE audit_events ADD COLUMN duration_us BIGINT;
