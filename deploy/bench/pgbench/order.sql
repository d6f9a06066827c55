-- What one order minimally needs, in one transaction: the guarded stock
-- update (which also reads the price), the order, its one line.
-- :n is the product: 0, the hot row, with -D hot=1; else random per order.
\if :hot
\set n 0
\else
\set n random(1, :products)
\endif
\set customer random(1, 1000000)
BEGIN;
UPDATE products SET quantity = quantity - 1, updated_at = now()
    WHERE id = ('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid AND quantity >= 1
    RETURNING id AS product_id, price \gset
INSERT INTO orders (id, customer_id, status, total_price)
    VALUES (gen_random_uuid(), :customer, 'pending', :price) RETURNING id AS order_id \gset
INSERT INTO order_items (order_id, product_id, quantity, price_at_purchase)
    VALUES (:order_id, :product_id, 1, :price);
END;
