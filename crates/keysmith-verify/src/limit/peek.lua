-- What is left of a key's limits, counting nothing (read-only: GET only).
-- KEYS and ARGV[1..3] as in check.lua.
-- Returns {key rate calls left, tool rate calls left, quota calls left};
-- -1 where that limit does not exist.
-- Redis's clock, as check.lua.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local minute = 60000000

local function rate_left(key, interval)
  if interval <= 0 then return -1 end
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  return math.floor((now + minute - tat) / interval)
end

local quota_left = -1
local calls = tonumber(ARGV[3])
if calls > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  quota_left = math.max(calls - used, 0)
end
return {rate_left(KEYS[1], tonumber(ARGV[1])), rate_left(KEYS[2], tonumber(ARGV[2])), quota_left}
