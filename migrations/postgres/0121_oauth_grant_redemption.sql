-- A grant is live only once its authorization code is redeemed: approving
-- consent writes it pending (`redeemed_at` NULL), which no list, API or
-- page shows, and the scheduler deletes a pending grant once its code has
-- expired (revoking the parent key minted for it). Grants that already
-- issued tokens were redeemed; the others are left pending, to be swept.
ALTER TABLE oauth_grants ADD COLUMN redeemed_at BIGINT;
UPDATE oauth_grants SET redeemed_at = created_at
WHERE EXISTS (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = oauth_grants.id);
-- A client's grants (the purge of registered clients that never got one).
CREATE INDEX oauth_grants_client ON oauth_grants (tenant_id, client_id);
