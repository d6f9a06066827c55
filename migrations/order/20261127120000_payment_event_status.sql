-- Each payment event id remembers the payment status it came with, beside its
-- order: the same id again with the same order and status is a repeat (a
-- no-op), with another order or status it is refused (EVENT_ID_REUSED), never
-- acknowledged without being applied. An id outside the signature (the
-- Webhook-Id header beside X-Signature) can then no longer turn another
-- order's genuine event into a no-op.
--
-- NULL for rows recorded before this migration: those are judged by order
-- alone, as before, until the reconciler prunes them.
ALTER TABLE payment_events ADD COLUMN payment_status text;

ALTER TABLE payment_events ADD CONSTRAINT payment_events_payment_status_known
    CHECK (payment_status IN ('unpaid', 'paid', 'failed'));

-- The reconciler's prune: rows older than PAYMENT_EVENT_RETENTION_DAYS,
-- oldest first.
CREATE INDEX payment_events_by_age ON payment_events (created_at);
