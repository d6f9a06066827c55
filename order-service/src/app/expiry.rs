//! The payment timeout (PENDING_PAYMENT_TIMEOUT, off unless set): an order
//! still pending and not paid that long after it was created is canceled
//! with reason `payment_timeout`, so stock held by orders nobody pays for
//! returns to the shelf. The reconciler runs it on each pass.
//!
//! An expiry is an ordinary status change ([`super::update_status`]'s path):
//! under the order's row lock it checks again that the order is pending, not
//! paid and old enough, then writes `canceled`, the release in the outbox and
//! the order event in one transaction. A payment, a cancel or a completion
//! racing it takes the same lock, so exactly one of them wins: the payment
//! that comes second is refused as expired (ORDER_EXPIRED: the processor
//! refunds), the cancel is a no-op, the completion is refused.

use std::time::Duration;

use uuid::Uuid;

use crate::{
    domain::{CancelReason, OrderStatus, event},
    error::OrderError,
    store::Store,
};

use super::{outbox::Relay, update_status::change_status};

/// Cancels order `id` if, under its row lock, it is still pending, not paid
/// and at least `timeout` old; `true` if it did. Its stock goes back through
/// the outbox (delivered here, retried by the reconciler).
pub async fn expire(
    store: &Store,
    relay: &Relay,
    id: Uuid,
    timeout: Duration,
) -> Result<bool, OrderError> {
    let mut tx = store.begin().await?;
    let Some(current) = tx.lock_order(id).await? else {
        return Ok(false);
    };
    if !event::expires(current.status, current.payment_status)
        || !tx.created_before(id, timeout).await?
    {
        tx.rollback().await?;
        return Ok(false);
    }
    let queued = change_status(
        &mut tx,
        id,
        current,
        OrderStatus::Canceled,
        CancelReason::PaymentTimeout,
    )
    .await?;
    tx.commit().await?;
    if let Some(entry) = queued {
        relay.deliver_now(entry).await;
    }
    Ok(true)
}
