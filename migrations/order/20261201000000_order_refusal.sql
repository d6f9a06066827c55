-- Why a rejected order was refused, as the order service's own record: the
-- reason with its details and the message its caller got, as JSON (the
-- domain's refusal). NULL for an order abandoned with an unknown outcome.
--
-- Rows rejected before this migration keep the gRPC status their caller got
-- in rejection_code, rejection_message and rejection_details (refusal NULL);
-- the service reads both forms, so their idempotent replays answer as before.
-- New rows leave those three columns NULL.
ALTER TABLE orders ADD COLUMN refusal jsonb;
