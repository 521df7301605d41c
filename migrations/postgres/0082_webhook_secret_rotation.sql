-- A webhook's signing secret can be rotated with an overlap: until
-- previous_secret_until, deliveries carry a signature under the previous
-- secret too (two v1 entries), so receivers switch without missing events.
-- Sealed like the current secret, bound to the same endpoint.
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_sealed TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_until BIGINT;
