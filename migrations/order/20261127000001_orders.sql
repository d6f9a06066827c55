-- Orders and their lines.
--
-- status:
--   reserving  internal: the saga inserted the order and is taking stock from
--              the catalog (reservation id = order id); never shown by the API
--   pending    stock is taken; waiting for completion or cancelation
--   completed  final; stock stays taken (reservation committed)
--   canceled   final; stock given back (reservation released)
--   rejected   internal: the catalog refused, or the outcome was unknown and
--              the reservation was released; never shown by the API
CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    customer_id     bigint NOT NULL,
    status          text NOT NULL,
    payment_status  text NOT NULL DEFAULT 'unpaid',
    -- Exact sum of quantity x price_at_purchase; 0 until the order is pending.
    -- Wider than a price: it is a sum of products.
    total_price     numeric(30, 2) NOT NULL DEFAULT 0,
    -- Why a rejected order was refused: the gRPC status the caller got, so that
    -- an idempotent replay of a definitely refused request answers the same.
    rejection_code    integer,
    rejection_message text,
    rejection_details bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_customer_id_positive CHECK (customer_id > 0),
    CONSTRAINT orders_status_known
        CHECK (status IN ('reserving', 'pending', 'completed', 'canceled', 'rejected')),
    CONSTRAINT orders_payment_status_known
        CHECK (payment_status IN ('unpaid', 'paid', 'failed')),
    CONSTRAINT orders_total_price_not_negative CHECK (total_price >= 0)
);

-- The list query: visible orders only, newest first (created_at, id), with
-- optional filters. The partial indexes hold visible orders only, so the
-- hidden saga states never cost a list anything.
CREATE INDEX orders_visible_newest_first ON orders (created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_by_status_newest_first ON orders (status, created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_by_payment_status_newest_first
    ON orders (payment_status, created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');
CREATE INDEX orders_by_customer_newest_first ON orders (customer_id, created_at DESC, id DESC)
    WHERE status IN ('pending', 'completed', 'canceled');

-- The reconciler's scan: orders stuck in the saga, oldest first.
CREATE INDEX orders_reserving_by_age ON orders (created_at) WHERE status = 'reserving';

-- One line per product (the catalog merges request lines of one product), with
-- the price at the moment the stock was taken. The integer id is what the
-- public API exposes.
CREATE TABLE order_items (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id          uuid NOT NULL,
    product_id        uuid NOT NULL,
    quantity          integer NOT NULL,
    price_at_purchase numeric(10, 2) NOT NULL,
    CONSTRAINT order_items_order_fk FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE CASCADE,
    -- Also the index for "the lines of an order".
    CONSTRAINT order_items_one_line_per_product UNIQUE (order_id, product_id),
    CONSTRAINT order_items_quantity_positive CHECK (quantity > 0),
    CONSTRAINT order_items_price_not_negative CHECK (price_at_purchase >= 0)
);
