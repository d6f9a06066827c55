-- Shared by every scenario script: data files, per-thread status counters, and
-- a machine-readable summary line that bench.py parses.
--
-- wrk runs one Lua state per thread plus one for setup/done; this file is
-- loaded into each. Thread states get `tid` (1-based) from setup().

local data_dir = os.getenv("BENCH_DATA") or "."
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")

-- Lines of a data file (optionally only this thread's share: line i goes to
-- thread ((i - 1) % nthreads) + 1, so no two threads send the same line).
function read_lines(name, only_mine)
  local lines = {}
  local i = 0
  for line in io.lines(data_dir .. "/" .. name) do
    i = i + 1
    if line ~= "" and (not only_mine or ((i - 1) % nthreads) + 1 == tid) then
      lines[#lines + 1] = line
    end
  end
  return lines
end

json_headers = { ["Content-Type"] = "application/json" }

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  threads[#threads + 1] = thread
end

c2xx, c4xx, c5xx, cother = 0, 0, 0, 0

function response(status, headers, body)
  if status >= 200 and status < 300 then
    c2xx = c2xx + 1
  elseif status >= 500 then
    c5xx = c5xx + 1
  elseif status >= 400 then
    c4xx = c4xx + 1
  else
    cother = cother + 1
  end
  if on_response then
    on_response(status, body)
  end
end

function seed_random()
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

-- The init of the scenarios over the seeded products (`init = init_products`):
-- seeds this thread's random numbers and loads every product id.
function init_products(args)
  seed_random()
  product_ids = read_lines("products.txt")
end

-- One of the seeded products, at random.
function any_product()
  return product_ids[math.random(#product_ids)]
end

function done(summary, latency, requests)
  local s2, s4, s5, so = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    s2 = s2 + (thread:get("c2xx") or 0)
    s4 = s4 + (thread:get("c4xx") or 0)
    s5 = s5 + (thread:get("c5xx") or 0)
    so = so + (thread:get("cother") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "s2xx": %d, "s4xx": %d, "s5xx": %d, "sother": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, s2, s4, s5, so,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
