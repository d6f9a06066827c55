//! ApplyPayment: a payment event id seen before is judged by
//! [`payment::seen_event`] (the same delivery again is a no-op, anything else
//! a refusal); otherwise the order must take payments
//! ([`payment::accepts_payment`]: pending; one the payment timeout canceled
//! is refused as expired) and the payment machine decides. The event id is
//! recorded, with the order and status, in the transaction of the change, so
//! it is seen iff it applied; so is the order event of a change.

use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{Order, OrderEventKind, PaymentStatus, payment},
    error::OrderError,
};

use super::{Orders, commit_with_order, lock_visible};

impl Orders {
    /// Applies payment status `to` to order `id`, once per `event_id`.
    #[instrument(skip(self))]
    pub async fn apply_payment(
        &self,
        id: Uuid,
        to: PaymentStatus,
        event_id: Option<&str>,
    ) -> Result<Order, OrderError> {
        let mut tx = self.store.begin().await?;
        let current = lock_visible(&mut tx, id).await?;
        let mut repeated = false;
        if let Some(event_id) = event_id
            && let Some(recorded) = tx.record_payment_event(event_id, id, to).await?
        {
            payment::seen_event(event_id, recorded, id, to).inspect_err(|_| {
                tracing::warn!(
                    event_id,
                    order_id = %id,
                    "payment event id reused for another delivery"
                );
            })?;
            repeated = true;
        }
        if !repeated {
            payment::accepts_payment(current.status, current.cancel_reason)?;
            if payment::payment_transition(current.payment_status, to)? {
                tx.set_payment_status(id, current.payment_status, to)
                    .await?;
                if let Some(kind) = OrderEventKind::of_payment(to) {
                    tx.record_event(id, kind).await?;
                }
            }
        }
        commit_with_order(tx, id).await
    }
}
