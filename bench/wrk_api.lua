-- wrk script for bench/bench_api.py: BENCH_PHASE = read | write | mixed, BENCH_KEY = the API key.
-- Writes add a new email each (w-<phase>-<thread>-<n>@example.com); reads cycle over users u0..u999.
local phase = os.getenv("BENCH_PHASE") or "read"
local key = os.getenv("BENCH_KEY")
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  writes = 0
  read_headers = {["X-Api-Key"] = key}
  write_headers = {["X-Api-Key"] = key, ["Content-Type"] = "application/json"}
end

function request()
  n = n + 1
  local write = phase == "write" or (phase == "mixed" and n % 5 == 0)
  if write then
    local body = string.format('{"Email": "w-%s-%d-%d@example.com"}', phase, tid, n)
    return wrk.format("POST", "/api/v1.0/blacklists", write_headers, body)
  end
  return wrk.format("GET", string.format("/users/u%d/blacklist-status", n % 1000), read_headers)
end

function response(status, headers, body)
  if status == 201 then
    writes = writes + 1
  end
end

function done(summary, latency, requests)
  local total_writes = 0
  for _, t in ipairs(threads) do
    total_writes = total_writes + t:get("writes")
  end
  local seconds = summary.duration / 1e6
  local non2xx = summary.errors.status
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, ' ..
    '"max_ms": %.2f, "non2xx": %d, "socket_errors": %d, "writes": %d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, total_writes))
end
