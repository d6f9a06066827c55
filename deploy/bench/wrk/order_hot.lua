-- Scenario 5: POST /api/orders, one unit, every order on the same product (a
-- hot row).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

local hot
function init(args)
  seed_random()
  hot = read_lines("hot.txt")[1]
end

function request()
  local body = string.format('{"customer_id": %d, "products": [{"product_id": "%s", "quantity": 1}]}',
    math.random(1, 1000000), hot)
  return wrk.format("POST", "/api/orders", json_headers, body)
end
