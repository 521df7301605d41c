-- The MCP sessions (`Mcp-Session-Id`) the verification layer saw an upstream
-- issue, each bound to the key that received it: a request carrying a
-- session id is let through only for that key, on every gateway instance.
-- The id is a bearer secret of the session, so only its SHA-256 (hex) is
-- kept. A binding ends with the session's DELETE, or ages out once unused
-- (`seen_at`, refreshed now and then while the session is used).
CREATE TABLE mcp_sessions (
    session_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
-- The cleanup of idle bindings.
CREATE INDEX mcp_sessions_seen_at ON mcp_sessions (seen_at);
