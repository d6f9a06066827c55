-- The webhook ceiling's pending orders, run by bench.py (psql) before each
-- of its measurements: forgets the payment and order events the last one
-- recorded and puts the orders it paid back to unpaid, so every run pays
-- orders that are really pending and unpaid (webhook.sql). The first time
-- (:seed true) it makes them: :orders orders with ids
-- 00000000-0000-0000-0001-<n, 12 digits>, pending and unpaid, as the order
-- service leaves them once their stock is reserved. Only the webhook
-- ceiling pays orders in this database; order.sql's stay unpaid.
TRUNCATE payment_events, order_events;
UPDATE orders SET payment_status = 'unpaid', updated_at = created_at WHERE payment_status <> 'unpaid';
\if :seed
INSERT INTO orders (id, customer_id, status, total_price)
SELECT ('00000000-0000-0000-0001-' || lpad(n::text, 12, '0'))::uuid, 1 + n % 1000000, 'pending', 9.99
FROM generate_series(1, :orders) AS n;
\endif
