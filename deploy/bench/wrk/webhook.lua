-- Scenario 6: signed payment webhooks ("paid"), one per pending order from a
-- precomputed file of "<hex signature> <body>" lines; each thread sends its
-- own share, cycling (a repeat is the idempotent 200) if the run outlasts it.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

local requests, n
function init(args)
  requests = {}
  for _, line in ipairs(read_lines("webhooks.txt", true)) do
    local sig, body = line:match("^(%x+) (.*)$")
    requests[#requests + 1] = wrk.format("POST", "/api/payment-webhook",
      { ["Content-Type"] = "application/json", ["X-Signature"] = sig }, body)
  end
  n = 0
end

function request()
  n = n + 1
  return requests[((n - 1) % #requests) + 1]
end
