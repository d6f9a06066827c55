-- Scenario 7: a mix of 80% GET /api/products/{id}, 15% POST /api/orders (one
-- unit, spread) and 5% cancels (PUT /api/orders/{id}/status of a pending
-- order; each thread cancels its own share of a precomputed list).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

local cancels, next_cancel
local cancel_body = '{"status": "canceled"}'
function init(args)
  init_products(args)
  cancels = read_lines("cancels.txt", true)
  next_cancel = 0
end

function request()
  local r = math.random()
  if r < 0.80 then
    return wrk.format("GET", "/api/products/" .. any_product())
  elseif r < 0.95 or #cancels == 0 then
    local body = string.format('{"customer_id": %d, "products": [{"product_id": "%s", "quantity": 1}]}',
      math.random(1, 1000000), any_product())
    return wrk.format("POST", "/api/orders", json_headers, body)
  else
    next_cancel = next_cancel + 1
    local id = cancels[((next_cancel - 1) % #cancels) + 1]
    return wrk.format("PUT", "/api/orders/" .. id .. "/status", json_headers, cancel_body)
  end
end
