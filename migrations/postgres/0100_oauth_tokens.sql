-- OAuth tokens (Keysmith as the authorization server of the MCP servers it
-- protects). Opaque, in the key format with a marker (`ks_at_…`); like keys,
-- only HMAC-SHA-256(pepper, secret) is kept. Every token hangs on a parent
-- key: the client's own key (client credentials) or, for the
-- authorization-code flow, the key its grant is backed by. Verification
-- joins the key, its service user and its tenant, so revoking, rotating
-- past the cutoff or disabling any of them stops the token at once.
-- `scopes` NULL: the key's whole reach; otherwise a JSON array of scopes.
-- `grant_id`: the authorization-code grant (later), NULL for client credentials.
CREATE TABLE oauth_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key_id TEXT NOT NULL REFERENCES api_keys (id),
    grant_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    pepper_version BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    scopes TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
-- Live tokens of a key (the per-key cap), and the purge of expired ones.
CREATE INDEX oauth_tokens_key_expires ON oauth_tokens (key_id, expires_at);
CREATE INDEX oauth_tokens_expires ON oauth_tokens (expires_at);
