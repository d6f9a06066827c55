//! UpdateOrderStatus: the status machine decides under the order's row lock;
//! a change writes the new status and the inventory call it implies (release
//! on cancel, commit on complete) in one transaction, and the call is
//! delivered once that commits.

use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{Order, OrderStatus, StatusChange, status},
    error::OrderError,
};

use super::{Orders, commit_with_order, lock_visible};

impl Orders {
    /// Moves order `id` to `to`. Repeating the current status is a
    /// successful no-op; a move the machine refuses changes nothing.
    #[instrument(skip(self))]
    pub async fn update_status(&self, id: Uuid, to: OrderStatus) -> Result<Order, OrderError> {
        let mut tx = self.store.begin().await?;
        let current = lock_visible(&mut tx, id).await?;
        let mut queued = None;
        if let StatusChange::Changed(action) = status::transition(current.status, to)? {
            tx.set_status(id, current.status, to).await?;
            if let Some(action) = action {
                queued = Some(tx.queue_inventory_call(id, action).await?);
            }
        }
        let order = commit_with_order(tx, id).await?;
        // Committed: the status change stands whatever happens next. Try the
        // inventory call now; the reconciler retries what fails.
        if let Some(entry) = queued
            && let Err(error) = self.relay.deliver(entry.id).await
        {
            tracing::warn!(error = ?error, "outbox delivery failed; the reconciler will retry");
        }
        Ok(order)
    }
}
