-- Scenario 3: POST /api/orders, one unit of one product, spread over the
-- seeded products.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

init = init_products

function request()
  local body = string.format('{"customer_id": %d, "products": [{"product_id": "%s", "quantity": 1}]}',
    math.random(1, 1000000), any_product())
  return wrk.format("POST", "/api/orders", json_headers, body)
end
