//! The application layer: what each RPC does, as domain rules
//! ([`crate::domain`]) applied to store primitives ([`crate::store`]). It
//! opens and commits the transactions, asks the domain's state machines what
//! a request means, and says what happens after a commit (deliver the
//! inventory call now, let the reconciler retry). It knows no wire type: the
//! gRPC edge ([`crate::grpc`]) hands it domain values and maps its answers
//! and [`OrderError`]s back.
//!
//! - this file: [`Orders`], the handle the edge calls, and the reads;
//! - [`update_status`]: the UpdateOrderStatus call;
//! - [`apply_payment`]: the ApplyPayment call;
//! - [`saga`]: CreateOrder, and abandoning a reservation whose outcome is
//!   unknown;
//! - [`outbox`]: delivery of the inventory calls that status changes imply;
//! - [`expiry`]: the payment timeout, canceling orders left unpaid;
//! - [`events`]: WatchOrderEvents: the sequencer that numbers committed
//!   order events, and the watchers that stream them;
//! - [`reconciler`]: the background loop that finishes abandoned sagas,
//!   expires unpaid orders, re-sends undelivered outbox rows and prunes old
//!   keys, event ids and order events.

pub mod apply_payment;
pub mod events;
pub mod expiry;
pub mod outbox;
pub mod reconciler;
pub mod saga;
pub mod update_status;

use proto::paging::PageRequest;
use uuid::Uuid;

use crate::{
    domain::{ListFilter, NewOrder, Order},
    error::OrderError,
    store::{Locked, Store, Tx},
};

use self::{events::EventLog, outbox::Relay, saga::Saga};

/// The service's use cases; cheap to clone.
#[derive(Clone)]
pub struct Orders {
    store: Store,
    saga: Saga,
    relay: Relay,
    events: EventLog,
}

impl Orders {
    pub fn new(store: Store, saga: Saga, relay: Relay, events: EventLog) -> Self {
        Self {
            store,
            saga,
            relay,
            events,
        }
    }

    /// WatchOrderEvents: see [`events`].
    pub async fn watch_events(
        &self,
        after: i64,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<crate::store::OrderEvent, OrderError>>, OrderError>
    {
        self.events.watch(after).await
    }

    /// CreateOrder: see [`saga`]. Runs to its end even if the caller goes
    /// away: every call does (`platform::server::RunToCompletionLayer`).
    pub async fn create(&self, order: NewOrder) -> Result<Order, OrderError> {
        self.saga.create_order(order).await
    }

    /// GetOrder.
    pub async fn get(&self, id: Uuid) -> Result<Order, OrderError> {
        visible_order(&self.store, id).await
    }

    /// ListOrders: one page of visible orders, newest first, and how many
    /// match in all (see [`Store::list_orders`] for what that count costs).
    pub async fn list(
        &self,
        filter: ListFilter,
        page: PageRequest,
    ) -> Result<(Vec<Order>, u64), OrderError> {
        self.store.list_orders(filter, page).await
    }
}

/// A visible order; the saga's internal states read as not found.
pub(crate) async fn visible_order(store: &Store, id: Uuid) -> Result<Order, OrderError> {
    store
        .order(id)
        .await?
        .filter(|order| order.status.is_visible())
        .ok_or(OrderError::NotFound(id))
}

/// Locks a visible order's row for a state change; hidden or missing orders
/// are not found.
async fn lock_visible(tx: &mut Tx, id: Uuid) -> Result<Locked, OrderError> {
    tx.lock_order(id)
        .await?
        .filter(|order| order.status.is_visible())
        .ok_or(OrderError::NotFound(id))
}

/// The order as a change left it, read in the change's transaction, which
/// this commits.
async fn commit_with_order(mut tx: Tx, id: Uuid) -> Result<Order, OrderError> {
    let order = tx.order(id).await?.ok_or(OrderError::NotFound(id))?;
    tx.commit().await?;
    Ok(order)
}
