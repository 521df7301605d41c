-- Binds a session to its first owner. KEYS[1]: the binding (a hash: k = key
-- id, t = tenant id, s = last seen, Unix seconds). ARGV: key id, tenant id,
-- now, idle_before (a binding unused since before it has aged out), expiry
-- in seconds. Returns the binding that holds afterwards.
local held = redis.call('HMGET', KEYS[1], 'k', 't', 's')
if held[1] and tonumber(held[3]) < tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1])
  held = {false, false, false}
end
if not held[1] then
  redis.call('HSET', KEYS[1], 'k', ARGV[1], 't', ARGV[2], 's', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return {ARGV[1], ARGV[2], ARGV[3]}
end
return held
