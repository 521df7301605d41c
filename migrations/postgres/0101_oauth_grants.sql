-- OAuth grants (the authorization-code flow): a person of the tenant
-- approved a client to act as one service user, within some scopes. Each
-- grant is backed by its own parent key, minted at approval for that
-- service user, its allowlists narrowed to the approved scopes; every
-- token of the grant hangs on that key (oauth_tokens.grant_id, key_id), so
-- revoking the grant revokes the key and the tokens stop within a key
-- revocation's bound. The key's plaintext is never kept nor shown.
-- `scopes`: JSON array of the approved scopes. `approved_by`: the actor.
-- `refresh_until`: the absolute end of the grant's refresh tokens.
CREATE TABLE oauth_grants (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    service_user_id TEXT NOT NULL REFERENCES service_users (id),
    key_id TEXT NOT NULL REFERENCES api_keys (id),
    scopes TEXT NOT NULL,
    resource TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    refresh_until BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX oauth_grants_tenant_created ON oauth_grants (tenant_id, created_at);
CREATE INDEX oauth_grants_key ON oauth_grants (key_id);

-- Authorization codes: only a SHA-256 of the code is kept; single-use
-- (`used_at` set by one conditional update), short-lived, bound to the
-- PKCE challenge (S256), the client, the redirect URI and the resource.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id),
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    resource TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- A grant's tokens (refresh rotation, revocation of the whole grant).
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);

-- The tenant's OAuth policy: access-token lifetime (5 minutes to 24 hours),
-- refresh-token idle and absolute lifetimes.
ALTER TABLE tenants ADD COLUMN oauth_access_token_minutes BIGINT NOT NULL DEFAULT 10;
ALTER TABLE tenants ADD COLUMN oauth_refresh_idle_days BIGINT NOT NULL DEFAULT 30;
ALTER TABLE tenants ADD COLUMN oauth_refresh_absolute_days BIGINT NOT NULL DEFAULT 90;
