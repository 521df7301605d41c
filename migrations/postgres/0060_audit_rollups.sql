-- Per-key daily rollups of tool calls, kept beyond the raw rows' retention
-- (KEYSMITH_AUDIT_RETENTION_DAYS). `day` is the unix time of a UTC midnight.
-- A day is rolled up once, whole, for every tenant: its row in
-- audit_rollup_days is claimed in the same transaction as its rollups, so two
-- schedulers never count a day twice, and retention never deletes a raw row
-- whose day has no row here.
CREATE TABLE audit_rollup_days (
    day BIGINT PRIMARY KEY,
    rolled_at BIGINT NOT NULL,
    -- Raw tool calls folded into this day's rollups.
    calls BIGINT NOT NULL
);

-- One row per key, tool and day. `durations` is a histogram over fixed
-- log-spaced buckets (src/domain/durations.rs), as sparse
-- `bucket:count` pairs: days merge by adding counts, and p50/p99 are read
-- from the merged histogram.
CREATE TABLE audit_rollups (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    day BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    durations TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_id, day, tool)
);
