-- A tool call made with an OAuth access token is audited under its grant
-- and its client as well as its parent key (issue 32, item 7). Both NULL
-- for a call made with a key, and for admin actions. `grant_id` is NULL
-- for client credentials (no grant); `client_id` is then the key's id, as
-- the client named itself at the token endpoint. Written from the token's
-- cached verdict: no lookup per call.
ALTER TABLE audit_events ADD COLUMN grant_id TEXT;
ALTER TABLE audit_events ADD COLUMN client_id TEXT;
