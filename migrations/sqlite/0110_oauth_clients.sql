-- OAuth clients a tenant's issuer knows by id: registered by the client
-- itself (RFC 7591 dynamic registration) or pre-registered by an admin.
-- Clients identified by a client ID metadata document (an https URL) are
-- not stored here: their document is fetched and cached in memory.
-- `id` is the client_id (`kc_` + 22 base62). A confidential client's secret
-- is kept only as HMAC-SHA-256(pepper, secret) with its pepper version.
-- `redirect_uris` and `grant_types` are JSON arrays of strings.
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL CHECK (kind IN ('registered', 'pre_registered')),
    name TEXT NOT NULL,
    client_uri TEXT,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    auth_method TEXT NOT NULL
        CHECK (auth_method IN ('none', 'client_secret_basic', 'client_secret_post')),
    secret_hash TEXT,
    pepper_version INTEGER,
    created_at INTEGER NOT NULL,
    -- The admin who pre-registered it; NULL for dynamic registration.
    created_by TEXT,
    CHECK ((auth_method = 'none') = (secret_hash IS NULL))
);
CREATE INDEX oauth_clients_tenant ON oauth_clients (tenant_id, kind, created_at);

-- Dynamic registration is open by default (the MCP specification expects
-- it); a tenant may close it and accept only pre-registered clients and
-- client ID metadata documents.
ALTER TABLE tenants ADD COLUMN oauth_registration_open INTEGER NOT NULL DEFAULT 1;
