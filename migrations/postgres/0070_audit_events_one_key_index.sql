-- Upgrading: building it reads the whole table once (minutes at 100M rows),
-- during which the server waits at start.
-- One index per key instead of two: every per-key read (the key's audit
-- list, newest first; usage and anomaly counts over a time range) is a range
-- of (key_id, at), and each index costs every audited call an insert. `id`
-- last: the audit list's order and cursor are (at, id).
DROP INDEX audit_events_key;
DROP INDEX audit_events_key_tool;
CREATE INDEX audit_events_key_at ON audit_events (key_id, at, id);
