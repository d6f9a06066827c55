-- The ceiling's scratch database: tables shaped like the platform's (the
-- catalog's products, the order service's orders and order_items), in one
-- database, so one transaction can do what one order minimally needs.
-- :products and :hot_stock are set by bench.py (psql -v).
CREATE TABLE products (
    -- Product n (0 the hot one, 1..:products the spread ones) has the id
    -- 00000000-0000-0000-0000-<n, 12 digits>, so the script can name it.
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text,
    price       numeric(10, 2) NOT NULL,
    quantity    integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_quantity_not_negative CHECK (quantity >= 0)
);
-- The catalog's indexes: the partial ones make every stock change a non-HOT
-- update, as in the catalog.
CREATE INDEX products_newest_first ON products (created_at DESC, id DESC);
CREATE INDEX products_in_stock_newest_first ON products (created_at DESC, id DESC)
    WHERE quantity > 0;
CREATE INDEX products_out_of_stock_newest_first ON products (created_at DESC, id DESC)
    WHERE quantity = 0;

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    customer_id     bigint NOT NULL,
    status          text NOT NULL,
    payment_status  text NOT NULL DEFAULT 'unpaid',
    total_price     numeric(30, 2) NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- The order service's indexes.
CREATE INDEX orders_visible_newest_first ON orders (created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_by_status_newest_first ON orders (status, created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_by_payment_status_newest_first ON orders (payment_status, created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_by_customer_newest_first ON orders (customer_id, created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_reserving_by_age ON orders (created_at) WHERE status = 'reserving';

CREATE TABLE order_items (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id          uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id        uuid NOT NULL,
    quantity          integer NOT NULL,
    price_at_purchase numeric(10, 2) NOT NULL,
    CONSTRAINT order_items_one_line_per_product UNIQUE (order_id, product_id),
    CONSTRAINT order_items_quantity_positive CHECK (quantity > 0)
);

INSERT INTO products (id, name, price, quantity)
SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'Product ' || n, 9.99,
       CASE WHEN n = 0 THEN :hot_stock ELSE 1000000 END
FROM generate_series(0, :products) AS n;
VACUUM ANALYZE;
