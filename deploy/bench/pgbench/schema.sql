-- The ceiling's scratch database: tables shaped like the platform's (the
-- catalog's products, the order service's orders, order_items,
-- payment_events and order_events), in one database, so one transaction can
-- do what one order minimally needs. :products and :hot_stock are set by
-- bench.py (psql -v). The webhook ceiling's pending orders are added when it
-- is first measured (webhook_orders.sql), so the order ceilings measured
-- before it insert into tables as small as the order service's are then.
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
    -- Read by the list (list.sql selects the catalog's columns). The
    -- catalog's trigger that bumps it is left out: order.sql's stock update
    -- stays what it was measured as.
    version     bigint NOT NULL DEFAULT 1,
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
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Read by the webhook's row lock and copied into its order event.
    cancel_reason   text
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

-- The order service's payment event ids (webhook.sql records one per
-- delivery): the key, the foreign key and both indexes, as each insert
-- maintains them.
CREATE TABLE payment_events (
    event_id       text PRIMARY KEY,
    order_id       uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    payment_status text,
    CONSTRAINT payment_events_payment_status_known
        CHECK (payment_status IN ('unpaid', 'paid', 'failed'))
);
CREATE INDEX payment_events_by_order ON payment_events (order_id);
CREATE INDEX payment_events_by_age ON payment_events (created_at);

-- The order service's event log (webhook.sql writes the `paid` event), with
-- its unique sequence (NULL until numbered) and the sequencer's partial index.
CREATE TABLE order_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sequence       bigint,
    order_id       uuid NOT NULL,
    kind           text NOT NULL,
    status         text NOT NULL,
    payment_status text NOT NULL,
    cancel_reason  text,
    customer_id    bigint NOT NULL,
    total_price    numeric(30, 2) NOT NULL,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_events_sequence_unique UNIQUE (sequence),
    CONSTRAINT order_events_kind_known
        CHECK (kind IN ('created', 'paid', 'payment_failed', 'completed', 'canceled'))
);
CREATE INDEX order_events_unsequenced ON order_events (id) WHERE sequence IS NULL;

INSERT INTO products (id, name, price, quantity)
SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'Product ' || n, 9.99,
       CASE WHEN n = 0 THEN :hot_stock ELSE 1000000 END
FROM generate_series(0, :products) AS n;
VACUUM ANALYZE;
