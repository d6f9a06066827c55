//! UpdateOrderStatus: the status machine decides under the order's row lock;
//! a change writes the new status, the inventory call it implies (release on
//! cancel, commit on complete) and the order event in one transaction, and
//! the call is delivered once that commits. The payment timeout's
//! cancelations ([`super::expiry`]) take the same path.

use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{CancelReason, Order, OrderEventKind, OrderStatus, StatusChange, status},
    error::OrderError,
    store::{Locked, OutboxEntry, Tx},
};

use super::{Orders, commit_with_order, lock_visible};

impl Orders {
    /// Moves order `id` to `to`. Repeating the current status is a
    /// successful no-op; a move the machine refuses changes nothing.
    #[instrument(skip(self))]
    pub async fn update_status(&self, id: Uuid, to: OrderStatus) -> Result<Order, OrderError> {
        let mut tx = self.store.begin().await?;
        let current = lock_visible(&mut tx, id).await?;
        let queued = change_status(&mut tx, id, current, to, CancelReason::Requested).await?;
        let order = commit_with_order(tx, id).await?;
        // Committed: the status change stands whatever happens next. Try the
        // inventory call now; the reconciler retries what fails.
        if let Some(entry) = queued {
            self.relay.deliver_now(entry).await;
        }
        Ok(order)
    }
}

/// The status change of a locked order, in its transaction: the machine's
/// decision, the new status (with `reason` if it is a cancelation), the
/// inventory call it implies and the order event. Returns the queued call,
/// to deliver once the transaction commits.
pub(super) async fn change_status(
    tx: &mut Tx,
    id: Uuid,
    current: Locked,
    to: OrderStatus,
    reason: CancelReason,
) -> Result<Option<OutboxEntry>, OrderError> {
    let StatusChange::Changed(action) = status::transition(current.status, to)? else {
        return Ok(None);
    };
    let reason = (to == OrderStatus::Canceled).then_some(reason);
    tx.set_status(id, current.status, to, reason).await?;
    if let Some(kind) = OrderEventKind::of_status(to) {
        tx.record_event(id, kind).await?;
    }
    match action {
        Some(action) => Ok(Some(tx.queue_inventory_call(id, action).await?)),
        None => Ok(None),
    }
}
