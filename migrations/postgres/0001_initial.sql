-- Keysmith schema, PostgreSQL flavour. Timestamps are Unix seconds (UTC) so both
-- engines share one set of queries; ids are random base62 text.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    default_expiry_days BIGINT NOT NULL DEFAULT 90,
    max_expiry_days BIGINT NOT NULL DEFAULT 365,
    rotation_overlap_days BIGINT NOT NULL DEFAULT 7,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE admin_users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_superadmin BIGINT NOT NULL DEFAULT 0,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    CONSTRAINT admin_users_email_key UNIQUE (email)
);

CREATE TABLE memberships (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES admin_users (id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE service_users (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    owner_email TEXT,
    description TEXT,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    CONSTRAINT service_users_tenant_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    service_user_id TEXT NOT NULL REFERENCES service_users (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    pepper_version BIGINT NOT NULL,
    hint TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'rotating', 'expired', 'revoked')),
    allowed_tools TEXT,
    scopes TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    cutoff_at BIGINT,
    revoked_at BIGINT,
    revoked_reason TEXT,
    rotated_from TEXT REFERENCES api_keys (id),
    rotated_to TEXT REFERENCES api_keys (id),
    last_used_at BIGINT
);
CREATE INDEX api_keys_tenant_created ON api_keys (tenant_id, created_at DESC, id DESC);
CREATE INDEX api_keys_tenant_status_created ON api_keys (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX api_keys_service_user ON api_keys (service_user_id, created_at DESC, id DESC);
CREATE INDEX api_keys_status_expires ON api_keys (status, expires_at);
CREATE INDEX api_keys_status_cutoff ON api_keys (status, cutoff_at);

CREATE TABLE audit_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT,
    service_user_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    tool TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    request_id TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX audit_events_key ON audit_events (tenant_id, key_id, id DESC);
CREATE INDEX audit_events_key_tool ON audit_events (key_id, at, tool);

-- Emails to send, written in the same transaction as their cause. `dedupe_key`
-- (key id + kind + threshold) makes every notification exactly-once. A sender
-- claims rows by setting `lease_owner`/`lease_until`, so instances never share a row.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('rotation', 'expiry_reminder')),
    threshold_days BIGINT,
    dedupe_key TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    lease_owner TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    CONSTRAINT outbox_dedupe_key UNIQUE (dedupe_key)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_key ON outbox (tenant_id, key_id, id DESC);

-- Failed sign-ins, for throttling per account and per client address.
CREATE TABLE login_failures (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_subject ON login_failures (subject, at);
