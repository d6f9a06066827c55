-- Scenario 1: GET /api/products/{id}, ids spread over the seeded products.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

local ids
function init(args)
  seed_random()
  ids = read_lines("products.txt")
end

function request()
  return wrk.format("GET", "/api/products/" .. ids[math.random(#ids)])
end
