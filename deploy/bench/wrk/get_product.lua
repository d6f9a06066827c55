-- Scenario 1: GET /api/products/{id}, ids spread over the seeded products.
dofile(os.getenv("BENCH_WRK") .. "/common.lua")

init = init_products

function request()
  return wrk.format("GET", "/api/products/" .. any_product())
end
