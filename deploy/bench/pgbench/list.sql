-- What GET /api/products?page=1&page_size=20 costs the catalog's database:
-- the statements of Store::list_products (catalog-service/src/store/
-- products.rs, no stock filter) as it runs them, one snapshot for both (so
-- the total agrees with the page): the count, capped at :count_limit rows
-- (PageRequest::count_cap() + 1: the default MAX_LIST_OFFSET, 10,000, plus
-- the largest page, 100, plus one), then the first page, :page_size rows at
-- :offset. Set by bench.py (-D); with -M prepared they are bound as the
-- service binds them ($1, $2). The planner's estimate the store asks for
-- past the cap is never needed here: 1,001 products are counted exactly.
BEGIN;
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT count(*) FROM (SELECT 1 FROM products LIMIT :count_limit) AS capped;
SELECT id, name, description, price, quantity, created_at, updated_at, version
    FROM products ORDER BY created_at DESC, id DESC LIMIT :page_size OFFSET :offset;
END;
