-- Whether a tenant accepts clients identified by a client ID metadata
-- document (an https client_id fetched by Keysmith): tenant policy, beside
-- the dynamic-registration switch. Accepted by default (what MCP clients
-- such as Claude's connectors use); a tenant that refuses them accepts only
-- stored clients (pre-registered, or registered if registration is open).
ALTER TABLE tenants ADD COLUMN oauth_metadata_documents BIGINT NOT NULL DEFAULT 1;
