-- Scenario 4: POST /api/orders with five lines (five distinct products, one
-- unit each), spread over the seeded products.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

init = init_products

function request()
  local picked, lines = {}, {}
  while #lines < 5 do
    local id = any_product()
    if not picked[id] then
      picked[id] = true
      lines[#lines + 1] = string.format('{"product_id": "%s", "quantity": 1}', id)
    end
  end
  local body = string.format('{"customer_id": %d, "products": [%s]}',
    math.random(1, 1000000), table.concat(lines, ", "))
  return wrk.format("POST", "/api/orders", json_headers, body)
end
