-- What one signed payment webhook (`paid`) costs the order database, in one
-- transaction, as Orders::apply_payment (order-service/src/app/
-- apply_payment.rs) and the store (store/mod.rs, payments.rs, events.rs) do
-- it: lock the order's row (reading what the transition is judged on),
-- record the payment event id, the guarded payment status update, the
-- order's `paid` event. (The service then reads the order back, with its
-- lines, for the answer; as order.sql, this is what the change minimally
-- needs.)
--
-- Each transaction pays a different pending order, with a new event id, so
-- none is a no-op and no two clients wait on one row: :k counts this
-- client's transactions (pgbench keeps a client's variables from one
-- transaction to the next; -D k=0 starts it), so client c's k-th transaction
-- takes order k * :clients + c + 1 of the :orders that webhook_orders.sql
-- made pending and unpaid before the run (ids 00000000-0000-0000-0001-<n, 12
-- digits>). Past :orders it wraps around to orders already paid (the update
-- then changes nothing); bench.py warns when a run got that far.
\set n (:k * :clients + :client_id) % :orders + 1
\set k :k + 1
BEGIN;
SELECT id AS order_id, status, payment_status, cancel_reason FROM orders
    WHERE id = ('00000000-0000-0000-0001-' || lpad(:n::text, 12, '0'))::uuid FOR UPDATE \gset
INSERT INTO payment_events (event_id, order_id, payment_status)
    VALUES ('ceiling-' || :n::text, :order_id, 'paid') ON CONFLICT (event_id) DO NOTHING;
UPDATE orders SET payment_status = 'paid', updated_at = now()
    WHERE id = :order_id AND status = 'pending' AND payment_status = 'unpaid';
INSERT INTO order_events
        (order_id, kind, status, payment_status, cancel_reason, customer_id, total_price)
    SELECT id, 'paid', status, payment_status, cancel_reason, customer_id, total_price
    FROM orders WHERE id = :order_id;
END;
