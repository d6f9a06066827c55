-- Products and their stock. The catalog service is the only writer of
-- `quantity`; other services take stock through reservations.
CREATE TABLE products (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text,
    price       numeric(10, 2) NOT NULL,
    quantity    integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_name_length CHECK (char_length(name) BETWEEN 1 AND 255),
    CONSTRAINT products_price_positive CHECK (price > 0),
    CONSTRAINT products_quantity_not_negative CHECK (quantity >= 0)
);

-- The list query: newest first, stable (created_at, id), optionally filtered
-- by in_stock. One index per filter shape so each page is an index scan.
CREATE INDEX products_newest_first ON products (created_at DESC, id DESC);
CREATE INDEX products_in_stock_newest_first ON products (created_at DESC, id DESC)
    WHERE quantity > 0;
CREATE INDEX products_out_of_stock_newest_first ON products (created_at DESC, id DESC)
    WHERE quantity = 0;
