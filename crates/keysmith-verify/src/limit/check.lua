-- One call against a key's limits, atomically: the key's GCRA, the matching
-- tool override's GCRA, the quota window's counter. Nothing is counted
-- unless everything admits the call.
-- KEYS[1] key TAT, KEYS[2] tool TAT, KEYS[3] quota counter
-- ARGV[1] key interval (µs, 0: no rate), ARGV[2] tool interval (µs, 0: no
-- override), ARGV[3] quota calls (0: none), ARGV[4] seconds until the quota
-- window ends
-- Returns {0, 0} admitted; {1|2, µs to wait} over the key|tool rate; {3, 0} quota spent.
-- Redis's own clock, not the caller's: every instance sharing this Redis
-- then judges on one clock. With each instance's clock, a call whose time was
-- read a moment earlier on another instance but arrived later saw a bucket
-- one call fuller than it was (a burst over two gateways admitted one call
-- short of the limit), and clock skew shifted every decision.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local minute = 60000000

local function admit(key, interval)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - minute
  if allow_at > now then return nil, allow_at - now end
  return new_tat, 0
end

local tats = {}
for i = 1, 2 do
  local interval = tonumber(ARGV[i])
  if interval > 0 then
    local tat, wait = admit(KEYS[i], interval)
    if not tat then return {i, wait} end
    tats[i] = tat
  end
end

local calls = tonumber(ARGV[3])
if calls > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used >= calls then return {3, 0} end
  redis.call('INCR', KEYS[3])
  -- A minute past the window's end, for clock skew between instances.
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]) + 60)
end

for i, tat in pairs(tats) do
  -- A TAT in the past is the same as none: it expires when it gets there.
  redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
return {0, 0}
