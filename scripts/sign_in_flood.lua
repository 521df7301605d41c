-- wrk script for scripts/bench-sign-in: every request a refused sign-in from
-- its own client address (X-Forwarded-For, trusted from loopback) for its own
-- unknown account, so throttling never spares the password check: the
-- worst case for CPU and memory. Statuses are tallied across threads.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  n = 0
end

function request()
  n = n + 1
  local ip = string.format("10.%d.%d.%d", id, math.floor(n / 256) % 256, n % 256)
  local body = string.format("email=u%d-%d%%40bench.test&password=not-the-password-%d", id, n, n)
  return wrk.format("POST", "/admin/sign-in", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = ip,
  }, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("counts")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
end
