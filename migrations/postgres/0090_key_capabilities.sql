-- A key's resource and prompt allowlists beside its tools (JSON arrays of
-- patterns; NULL: not named). Least privilege: a key that names any list
-- reaches, of the other kinds, only what it names too, so a key that named
-- only tools before this migration reaches no resource and no prompt now,
-- stored as such (`[]`). A key that names nothing still reaches everything.
ALTER TABLE api_keys ADD COLUMN allowed_resources TEXT;
ALTER TABLE api_keys ADD COLUMN allowed_prompts TEXT;
UPDATE api_keys SET allowed_resources = '[]', allowed_prompts = '[]'
WHERE allowed_tools IS NOT NULL;
