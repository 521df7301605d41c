-- The key page and the audit API filter a key's events by kind. People's
-- actions on a key and refused requests are few beside its tool calls: these
-- partial indexes find them without walking every call of a busy key.
CREATE INDEX audit_events_key_admin ON audit_events (key_id, at) WHERE action <> 'tool.call';
CREATE INDEX audit_events_key_refused ON audit_events (key_id, at) WHERE action = 'tool.call' AND outcome = 'denied';
