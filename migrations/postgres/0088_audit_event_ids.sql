-- Audit events delivered by a remote gateway (`POST /api/v1/audit-events`)
-- carry the id the gateway gave each one, so a batch sent again after a lost
-- answer is stored once. Only those rows have one: the index is partial, and
-- the layer's own writers pay nothing for it.
ALTER TABLE audit_events ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX audit_events_event_id ON audit_events (tenant_id, event_id) WHERE event_id IS NOT NULL;
