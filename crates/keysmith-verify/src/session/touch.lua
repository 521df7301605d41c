-- Records that a session is in use. KEYS[1]: the binding; ARGV: now, expiry
-- in seconds. Never binds: an ended session stays ended.
local seen = redis.call('HGET', KEYS[1], 's')
if seen then
  if tonumber(seen) < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 's', ARGV[1])
  end
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
