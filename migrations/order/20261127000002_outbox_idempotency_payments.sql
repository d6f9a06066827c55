-- Transactional outbox: a status change and the inventory call it implies are
-- written in one transaction; the row is deleted once the catalog confirmed
-- the call. An order leaves `pending` once, so it has at most one row.
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The reservation to act on; equal to the order id.
    reservation_id  uuid NOT NULL,
    action          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    -- When the row may next be tried. Also a lease: whoever delivers a row
    -- first pushes this into the future, so replicas do not send it twice at once.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_order_fk FOREIGN KEY (reservation_id) REFERENCES orders (id),
    CONSTRAINT outbox_one_per_order UNIQUE (reservation_id),
    CONSTRAINT outbox_action_known CHECK (action IN ('release', 'commit')),
    CONSTRAINT outbox_attempts_not_negative CHECK (attempts >= 0)
);

-- The reconciler's scan: rows that are due.
CREATE INDEX outbox_due ON outbox (next_attempt_at);

-- Idempotency keys of CreateOrder. A key maps to the order its first request
-- created, with a hash of that request so that a different request under the
-- same key is recognised. Kept at least 24 hours; the reconciler prunes older
-- ones.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    order_id     uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_order_fk FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE CASCADE,
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Payment processor event ids already applied: a repeated event is a no-op.
CREATE TABLE payment_events (
    event_id   text PRIMARY KEY,
    order_id   uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_events_order_fk FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE CASCADE
);

CREATE INDEX payment_events_by_order ON payment_events (order_id);
