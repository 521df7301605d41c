-- Service users are listed a page at a time, newest first, by keyset on
-- (created_at, id) as keys are: this index makes page 1,000 cost what page 1 does.
CREATE INDEX service_users_tenant_created ON service_users (tenant_id, created_at DESC, id DESC);
