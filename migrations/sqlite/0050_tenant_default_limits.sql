-- A tenant's default rate limit and quota (`{"rate_limit": …, "quota": …}`,
-- the key's format), given to new keys that do not set their own; NULL: none.
ALTER TABLE tenants ADD COLUMN default_limits TEXT;
