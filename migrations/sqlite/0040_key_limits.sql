-- A key's rate limit and quota as JSON (`{"rate_limit": …, "quota": …}`),
-- enforced by the verification layer; NULL: no limits.
ALTER TABLE api_keys ADD COLUMN limits TEXT;
