-- Inventory reservations: stock taken for an order (reservation id = order id).
--   held      stock is taken; may still be released or committed
--   released  stock was given back (or, with no lines, a tombstone: released
--             before any reserve arrived, so a late reserve is refused)
--   committed final: the order completed; can no longer be released
CREATE TABLE reservations (
    id          uuid PRIMARY KEY,
    state       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_state_known CHECK (state IN ('held', 'released', 'committed'))
);

-- One line per product of a reservation (request lines for the same product
-- are summed), with the name and price at the moment the stock was taken.
CREATE TABLE reservation_lines (
    reservation_id uuid NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    -- RESTRICT: a product that is part of an order cannot be deleted.
    product_id     uuid NOT NULL,
    product_name   text NOT NULL,
    quantity       integer NOT NULL,
    unit_price     numeric(10, 2) NOT NULL,
    PRIMARY KEY (reservation_id, product_id),
    CONSTRAINT reservation_lines_product_fk FOREIGN KEY (product_id)
        REFERENCES products (id) ON DELETE RESTRICT,
    CONSTRAINT reservation_lines_quantity_positive CHECK (quantity > 0),
    CONSTRAINT reservation_lines_unit_price_positive CHECK (unit_price > 0)
);

-- The delete check and the FK's own lookups go by product.
CREATE INDEX reservation_lines_by_product ON reservation_lines (product_id);
