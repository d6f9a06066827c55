-- Scenario 2: GET /api/products?page_size=20 (first page, total counted over
-- every product).
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

local req
function init(args)
  req = wrk.format("GET", "/api/products?page_size=20")
end

function request()
  return req
end
