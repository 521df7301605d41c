-- Hourly rollups of the days not rolled up yet (today, and yesterday until
-- its daily rollup), so that usage reads at most the current hour raw.
-- An hour is written whole and overwritten whole (the same counts each
-- time), and dropped once its day has a daily rollup.
CREATE TABLE audit_rollup_hours (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    hour BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    durations TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_id, hour, tool)
);
-- The newest hour rolled up, and the cleanup of old hours.
CREATE INDEX audit_rollup_hours_hour ON audit_rollup_hours (hour);
