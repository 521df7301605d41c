-- Minute rollups of the hours not rolled up yet, so that usage and the
-- anomaly check count raw only the last minute or two, not the whole current
-- hour (millions of rows for a busy key). A minute is written whole and
-- overwritten whole, and dropped once the hourly rollups are an hour past it.
CREATE TABLE audit_rollup_minutes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    minute BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    durations TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_id, minute, tool)
);
-- The newest minute rolled up, the anomaly check's range, and the cleanup.
CREATE INDEX audit_rollup_minutes_minute ON audit_rollup_minutes (minute);
