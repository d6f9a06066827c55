-- Why a canceled order was canceled: 'requested' (UpdateOrderStatus) or
-- 'payment_timeout' (pending and unpaid past PENDING_PAYMENT_TIMEOUT). NULL
-- for orders that are not canceled, and for those canceled before this
-- migration (their reason was not recorded).
ALTER TABLE orders ADD COLUMN cancel_reason text;

ALTER TABLE orders ADD CONSTRAINT orders_cancel_reason_known
    CHECK (cancel_reason IN ('requested', 'payment_timeout'));

-- The order event log behind WatchOrderEvents: one row per change of a
-- visible order, inserted in the transaction of the change, with the order's
-- state as that transaction left it.
--
-- `id` is taken when the row is written, so it follows the order of writes,
-- not of commits: a transaction that took id 7 can commit after one that took
-- id 8. Consumers resume from the last `sequence` they processed, so that
-- number must follow commit order with no gap; it is given after commit, by
-- the sequencer (see order_event_sequencer), and is NULL until then.
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

-- The sequencer's scan: committed events not numbered yet, in write order.
CREATE INDEX order_events_unsequenced ON order_events (id) WHERE sequence IS NULL;

-- The sequencer's state, one row. Numbering takes this row's lock, so rounds
-- (from any replica) run one at a time and commit in the order of their
-- numbers: every snapshot sees sequences 1..last_sequence complete, never a
-- later one without an earlier one. `pruned_through`: events up to this
-- sequence were deleted by the retention (ORDER_EVENT_RETENTION).
CREATE TABLE order_event_sequencer (
    singleton      boolean PRIMARY KEY DEFAULT true,
    last_sequence  bigint NOT NULL,
    pruned_through bigint NOT NULL,
    CONSTRAINT order_event_sequencer_one_row CHECK (singleton)
);

INSERT INTO order_event_sequencer (singleton, last_sequence, pruned_through) VALUES (true, 0, 0);
